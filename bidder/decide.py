"""Which line item bids on an impression, and at what price: pure functions of the published state,
the request and what Redis said about the person and the budgets (no I/O here).

A line item is a display target of a running campaign (programmatic publishes them). For each
impression, the line items are tried in turn; each check that fails gives a no-bid reason, and
the request's reason is the one of the line item that went furthest. An impression of a private
auction (pmp.private_auction = 1) is for the deals it names: Cible, which buys in the open
auction, does not bid on it. The checks, in order:

  schedule    the campaign runs now, in a day part it allows
  inventory   site or app, as the line item allows
  size        one of its creatives fits a banner size of the impression
  blocked     a creative whose categories and advertiser domains the request does not block
  geo         device.geo in its countries, regions, cities or circles (when it has an area)
  person      a line item with an audience bids on known people only: in the consent set (a
              grant in force for ad targeting on display, not suppressed, not erased), with a
              TCF string granting purposes 1, 3 and 4 (and Cible's vendor id when configured)
              when regs.gdpr = 1, and in its member set
  trigger     a retargeting line item bids on a known person while their trigger moment lasts
              (e.g. from 2 hours to 3 days after abandoning a cart, without a purchase since);
              its creative names the product ({{product}}, {{product_price}}, {{product_url}},
              {{product_image}}, {{sku}}: published HTML-escaped)
  cap         fewer impressions than its frequency cap in the window
  budget      its campaign's spend plus this bid stays within the total and the day's budget
  pacing      even pacing: the day's spend is not ahead of the plan (today's share of what
              remains of the total, or the day's budget, spread over the day): the bid rate is
              throttled to track it
  floor       its price (base CPM x value, within min and max) reaches the impression's floor

A known person who may not be targeted is never bid on, not even by a line item without an
audience: their identity is not used, and nothing is shown to them.
"""

import math
from dataclasses import dataclass, field

from bidder.openrtb import Imp, Request

REASONS = (
    "no_line",
    "private_auction",
    "schedule",
    "inventory",
    "size",
    "blocked",
    "geo",
    "unknown_person",
    "no_consent",
    "tcf",
    "audience",
    "trigger",
    "cap",
    "budget",
    "pacing",
    "currency",
    "floor",
)
PRODUCT_TOKENS = ("product", "product_price", "product_url", "product_image", "sku")
PACING_LEAD = 2 / 1440  # even pacing runs two minutes of the day's plan ahead
RANK = {reason: rank for rank, reason in enumerate(REASONS)}
VALUE_REFERENCE = 0.5  # a person of this value is bid on at the base CPM


@dataclass
class Person:
    profile: int | None  # None: unknown
    consented: bool  # in the consent set
    tcf_ok: bool  # the TCF string allows it (or GDPR does not apply)
    members: dict[int, bool]  # line id -> in its member set
    values: dict[int, float | None]  # model id -> value
    caps: dict[int, int]  # line id -> impressions in the window
    moments: dict[int, dict] = field(default_factory=dict)  # line id -> the retargeting moment


@dataclass
class Budgets:
    spent: dict[int, int]  # campaign id -> nanos spent in all
    spent_today: dict[int, int]  # campaign id -> nanos spent today


@dataclass
class Choice:
    line: dict
    creative: dict
    price: float  # CPM, in `currency`
    currency: str
    moment: dict | None = None  # a retargeting line's: the product its creative names

    @property
    def markup(self) -> str:
        adm = self.creative["adm"]
        if self.moment is not None and "{{" in adm:
            for token in PRODUCT_TOKENS:
                adm = adm.replace("{{" + token + "}}", str(self.moment.get(token, "")))
        return adm


def convert(amount: float, source: str, target: str, rates: dict[str, float]) -> float | None:
    """`amount` of `source` in `target`, through the state's table (units of the workspace's
    currency per unit); None when a currency is not in the table."""
    if source == target:
        return amount
    if source not in rates or target not in rates or not rates[target]:
        return None
    return amount * rates[source] / rates[target]


def in_area(area: dict | None, request: Request) -> bool:
    if not area:
        return True
    if request.country and request.country in area.get("countries", ()):
        return True
    if request.region and request.region.casefold() in area.get("regions", ()):
        return True
    if request.city and request.city.casefold() in area.get("cities", ()):
        return True
    if request.lat is not None and request.lon is not None:
        for lat, lon, km in area.get("circles", ()):
            if _km(request.lat, request.lon, lat, lon) <= km:
                return True
    return False


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0088 * 2 * math.asin(min(1.0, math.sqrt(a)))


def compile_state(state: dict) -> dict:
    """The state as the hot path reads it, prepared once per version: each line item's hours and
    days as sets, its creatives by size with their categories and domains as sets, its prices as
    floats and its campaign's budgets at hand; the line items sorted by the highest price each can
    bid (in the workspace's currency), so the choice stops at the first that no later one can beat."""
    campaigns = state.get("campaigns", {})
    rates = state.get("rates", {})
    home = state.get("currency", "EUR")
    for line in state.get("lines", ()):
        line["_campaign"] = campaigns.get(str(line["campaign"]), {})
        line["_min"], line["_max"] = float(line["min_cpm"]), float(line["max_cpm"])
        line["_base"] = float(line["base_cpm"])
        top = (
            line["_max"] if line.get("value_model") is not None else min(max(line["_base"], line["_min"]), line["_max"])
        )
        top_home = convert(top, line["currency"], home, rates)
        line["_top"] = math.inf if top_home is None else top_home
        parts = line.get("dayparts")
        line["_hours"] = None if not parts else frozenset(h for start, end in parts for h in range(start, end))
        line["_days"] = frozenset(line["days"]) if line.get("days") else None
        by_size: dict[tuple[int, int], list[dict]] = {}
        for creative in line["creatives"]:
            creative["_cat"] = frozenset(creative.get("cat", ()))
            creative["_adomain"] = frozenset(d.lower() for d in creative.get("adomain", ()))
            by_size.setdefault((creative["w"], creative["h"]), []).append(creative)
        line["_sizes"] = by_size
        line["_sizeset"] = frozenset(by_size)
        line["_inventory"] = frozenset(line.get("inventory") or ("site", "app"))
    if "lines" in state:
        state["lines"] = sorted(state["lines"], key=lambda line: -line["_top"])
    # Each line item is a bit (its rank in that order): the line items of a banner size, of an
    # inventory, with an area, as bit masks, so the context's checks are a few integer ANDs.
    sizes: dict[tuple[int, int], int] = {}
    inventories = {"site": 0, "app": 0}
    areas = 0
    for bit, line in enumerate(state.get("lines", ())):
        for size in line["_sizeset"]:
            sizes[size] = sizes.get(size, 0) | 1 << bit
        for inventory in line["_inventory"]:
            inventories[inventory] = inventories.get(inventory, 0) | 1 << bit
        if line.get("area"):
            areas |= 1 << bit
    state["_masks"] = {"sizes": sizes, "inventories": inventories, "areas": areas, "schedule": {}}
    return state


def _schedule_mask(state: dict, now: float, local_hour: int, local_weekday: int) -> int:
    """The line items running now (campaign dates, day parts, days), kept for the minute."""
    cache = state["_masks"]["schedule"]
    moment = (int(now // 60), local_hour, local_weekday)
    mask = cache.get(moment)
    if mask is None:
        mask = 0
        for bit, line in enumerate(state["lines"]):
            if scheduled(line, now, local_hour, local_weekday):
                mask |= 1 << bit
        cache.clear()  # one minute at a time
        cache[moment] = mask
    return mask


def fitting_lines(state: dict, request: Request, now: float, local_hour: int, local_weekday: int) -> list[dict]:
    """The line items the request's context allows, before anything is read of the person: running
    now (schedule, day parts, days), on this inventory, with a creative of a size some impression
    takes, in the area; in the order of the highest price each can bid."""
    lines = state.get("lines", ())
    if not lines:
        return []
    masks = state["_masks"]
    by_size = masks["sizes"]
    sized = 0
    for imp in request.imps:
        for size in imp.sizes:
            sized |= by_size.get(size, 0)
    mask = (
        sized & masks["inventories"].get(request.inventory, 0) & _schedule_mask(state, now, local_hour, local_weekday)
    )
    found = []
    bit = 0
    while mask:
        if mask & 1:
            line = lines[bit]
            if not (masks["areas"] >> bit) & 1 or in_area(line["area"], request):
                found.append(line)
        mask >>= 1
        bit += 1
    return found


def scheduled(line: dict, now: float, local_hour: int, local_weekday: int) -> bool:
    if not line["starts"] <= now < line["ends"]:
        return False
    days = line["_days"]
    if days is not None and local_weekday not in days:
        return False
    hours = line["_hours"]
    return hours is None or local_hour in hours


def creative_for(line: dict, imp: Imp, request: Request) -> tuple[dict | None, str]:
    found = False
    for size in imp.sizes:
        for creative in line["_sizes"].get(size, ()):
            found = True
            if request.bcat and request.bcat & creative["_cat"]:
                continue
            if request.badv and request.badv & creative["_adomain"]:
                continue
            return creative, ""
    return None, "blocked" if found else "size"


def price_of(line: dict, person: Person) -> float:
    base = line["_base"]
    model = line.get("value_model")
    value = person.values.get(model) if model is not None else None
    if value is not None:
        base = base * value / VALUE_REFERENCE
    return min(max(base, line["_min"]), line["_max"])


def day_plan(campaign: dict, day_fraction: float) -> float:
    """What the campaign may have spent by now today (nanos). Even pacing: today's plan (what
    remains of the total over the days left, published each day, or the daily budget) spread
    evenly over the day, a couple of minutes ahead so the day's first bids can go; as fast as
    possible: all of it at once."""
    daily = campaign.get("daily")
    if campaign.get("pacing") == "asap":
        return math.inf if daily is None else daily
    plan = campaign.get("plan")
    if plan is None:
        plan = daily
    if plan is None:
        return math.inf
    return plan * min(1.0, day_fraction + PACING_LEAD)


def choose(
    *,
    state: dict,
    lines: list[dict],
    imp: Imp,
    request: Request,
    person: Person,
    budgets: Budgets,
    now: float,
    local_hour: int,
    local_weekday: int,
    day_fraction: float,
    currency: str,
    in_context: bool = False,
) -> tuple[Choice | None, str]:
    """The line item that bids on `imp` at the highest price (in `currency`, the response's), or
    None and the reason. `in_context`: the lines passed fitting_lines already."""
    best: Choice | None = None
    best_home = -math.inf  # the best price, in the workspace's currency
    furthest = "no_line"
    rates = state.get("rates", {})
    home = state.get("currency", "EUR")

    def further(reason: str) -> None:
        nonlocal furthest
        if RANK[reason] > RANK[furthest]:
            furthest = reason

    if imp.private:  # Cible buys in the open auction; deals are not negotiated here
        return None, "private_auction"
    for line in lines:
        if line["_top"] <= best_home:
            break  # sorted by the highest price each can bid: none of the rest can beat it
        if not in_context and not scheduled(line, now, local_hour, local_weekday):
            further("schedule")
            continue
        if not in_context and request.inventory not in line["_inventory"]:
            further("inventory")
            continue
        creative, reason = creative_for(line, imp, request)
        if creative is None:
            further(reason)
            continue
        if not in_context and not in_area(line.get("area"), request):
            further("geo")
            continue
        if person.profile is not None:
            if not person.consented:
                further("no_consent")
                continue
            if not person.tcf_ok:
                further("tcf")
                continue
        if line.get("members") is not None:
            if person.profile is None:
                further("unknown_person")
                continue
            if not person.members.get(line["id"]):
                further("audience")
                continue
        moment = None
        if line.get("trigger"):
            if person.profile is None:
                further("unknown_person")
                continue
            moment = person.moments.get(line["id"])
            if moment is None or not moment["from"] <= now < moment["until"]:
                further("trigger")
                continue
        cap = line.get("cap")
        if cap and person.profile is not None and person.caps.get(line["id"], 0) >= cap["max"]:
            further("cap")
            continue
        campaign = line["_campaign"]
        price = price_of(line, person)
        nanos = round(price * 1_000_000)  # one impression at a CPM, in nanos of the line's currency
        total = campaign.get("total")
        spent = budgets.spent.get(line["campaign"], 0)
        today = budgets.spent_today.get(line["campaign"], 0)
        daily = campaign.get("daily")
        if (total is not None and spent + nanos > total) or (daily is not None and today + nanos > daily):
            further("budget")
            continue
        if today >= day_plan(campaign, day_fraction):
            further("pacing")
            continue
        shown = convert(price, line["currency"], currency, rates)
        floor = convert(imp.floor, imp.floor_currency, currency, rates)
        if shown is None or floor is None:
            further("currency")
            continue
        if shown < floor:
            further("floor")
            continue
        if best is None or shown > best.price:
            best = Choice(line=line, creative=creative, price=round(shown, 4), currency=currency, moment=moment)
            best_home = convert(price, line["currency"], home, rates) or best_home
    return best, ("" if best else furthest)
