"""An exchange to test the bidder against: a simulated day of bid requests, a second-price
auction against simulated competitors, and the win, billing and loss notices an exchange sends.

    python -m bench.exchange                      # 10,000 profiles, 48,000 requests over a day
    python -m bench.exchange --requests 96000 --profiles 20000 --budget 12

Cible's side is real: a workspace of the benchmark database (BENCH_DATABASE_URL, default
cible_bench) gets people with browser ids and e-mails, ad-targeting consent for most of them,
carts abandoned, a segment and its audience, and two display campaigns set up as a marketer
would: "Winter sale" on the segment (even pacing of its total budget, a cap of 3 impressions a
person a day) and "Cart reminder" retargeting the carts (as fast as possible, the product named
in the creative). programmatic publishes the state to a Redis database of its own
(BENCH_EXCHANGE_REDIS_URL, default redis://127.0.0.1:6379/9, emptied first) and the bidder
(bidder.app, in this process, called through its ASGI interface) answers from it. The bidder's
clock is the simulator's: the workspace's day, from midnight to midnight, is played in minutes.

The exchange's side: requests spread over the hours as web traffic is (a trough at night, a peak
in the evening), from known people (their browser id as buyeruid, 70 %) and unknown ones, with a
TCF string that grants personalised ads (90 %) or grants nothing, a city, a banner size and a
floor. Two to six competitors bid (log-normal CPMs); the highest bid wins and pays the second
price (or the floor) plus 0.01. A win is notified (nurl); 95 % of wins are rendered and billed
(burl, with the clearing price); losses are notified (lurl, reason 102); one notice in ten is sent
twice, as exchanges retry. New carts are abandoned through the day and reach the bidder as
events; at 18:00 a tenth of the consenting people withdraw their consent, and at 20:00 the
marketer pauses the cart campaign. Every simulated five minutes the notice worker
(programmatic.notices) writes the bid days and the ledger.

It checks, and exits 1 when a check fails:
  - even pacing: the sale's spend at the end of each hour within +-10 % of its plan (the day's
    plan spread evenly over the day), and its plan not reached before 90 % of the day;
  - caps: no person saw more than 3 of the sale's impressions in a capping window;
  - consent: no bid on anyone whose consent was withdrawn, nor under a TCF string granting
    nothing, nor for the paused campaign after its pause;
  - exactly once: the bid days' impressions and spend equal the exchange's billed impressions
    and clearing prices, and the ledger holds that spend to the cent below, though a tenth of
    the notices came twice.
"""

import argparse
import asyncio
import math
import os
import random
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import DEFAULT_DATABASE_URL, check_loopback, django_setup, ensure_database, migrate, postgres_env

SLUG = "exchange-sim"
ZONE = "Europe/Paris"
# Published test vectors of the IAB's TCF library (iabtcf-es): one grants all ten purposes, one none.
TCF_GRANTS = (
    "COxR03kOxR1CqBcABCENAgCMAP_AAH_AAAqIF3EXySoGY2thI2YVFxBEIYwfJxyigMgChgQIsSwNQIeFLBoGLiAAHBGYJAQAGBAEEACBAQIkHGBMCQ"
    "AAgAgBiRCMQEGMCzNIBIBAggEbY0FACCVmHkHSmZCY7064O__QLuIJEFQMAkSBAIACLECIQwAQDiAAAYAl"
)
TCF_REFUSES = "CO5dPi4O5dPx2B7DvCENA2CgAAAAAAAAAAAAGewAAM8gAAAA.YAAAAAAAAAAA"
# Requests per hour of the day, relative (web traffic in France: a night trough, an evening peak).
TRAFFIC = [0.45, 0.35, 0.3, 0.3, 0.32, 0.4, 0.6, 0.85, 1.0, 1.05, 1.1, 1.15,
           1.25, 1.2, 1.1, 1.1, 1.15, 1.25, 1.4, 1.55, 1.6, 1.45, 1.1, 0.7]  # fmt: skip
CITIES = [("Paris", 48.8566, 2.3522), ("Lyon", 45.764, 4.8357), ("Marseille", 43.2965, 5.3698),
          ("Lille", 50.6292, 3.0573), ("Nantes", 47.2184, -1.5536), ("Bordeaux", 44.8378, -0.5792)]  # fmt: skip
SIZES = [((300, 250), 0.55), ((728, 90), 0.3), ((160, 600), 0.15)]
CAP = 3
PRODUCTS = ["Robe en lin", "Sac cabas", "Bottines cuir", "Pull en laine", "Écharpe cachemire"]


def setup(profiles: int, budget: Decimal, day_start: datetime, rng: random.Random):
    """The workspace, its people and campaigns (untimed), as of the simulated day's start."""
    from django.db import transaction

    from accounts.models import Workspace
    from accounts.services import workspace_create
    from audiences.services import audience_compute
    from campaigns.models import Campaign
    from campaigns.services import campaign_create
    from core.statistics import table_analyze
    from customers.models import Event, Identity, Profile
    from privacy.models import ConsentRecord
    from programmatic.models import Creative, LineItem
    from segments.services import segment_create

    Campaign.objects.filter(workspace__slug=SLUG).delete()  # their targets protect the segments
    Workspace.objects.filter(slug=SLUG).delete()
    workspace = workspace_create(name="Exchange simulation", slug=SLUG, currency="EUR", time_zone=ZONE)
    granted_at = day_start - timedelta(days=30)
    with transaction.atomic():
        people = Profile.objects.bulk_create(
            [
                Profile(workspace=workspace, external_id=f"p{i}", city=rng.choice(CITIES)[0], country="FR")
                for i in range(profiles)
            ],
            batch_size=5000,
        )
        Identity.objects.bulk_create(
            [Identity(workspace=workspace, profile=p, type="cookie", value=f"ck{p.external_id}") for p in people],
            batch_size=5000,
        )
        consenting = [p for p in people if rng.random() < 0.8]
        ConsentRecord.objects.bulk_create(
            [
                ConsentRecord(
                    workspace=workspace,
                    profile=p,
                    purpose="ad_targeting",
                    channel="display",
                    status="granted",
                    recorded_at=granted_at,
                    source="cmp",
                )
                for p in consenting
            ],
            batch_size=5000,
        )
        carts = rng.sample(people, profiles // 20)
        Event.objects.bulk_create(
            [_cart(workspace, p, day_start - timedelta(hours=rng.uniform(2, 40)), rng) for p in carts]
        )
    # Statistics for the planner, as the ingestion's batches get them (core.statistics): these
    # rows were written in bulk, outside the ingestion.
    for model in (Profile, Identity, ConsentRecord, Event):
        table_analyze(table=model._meta.db_table)
    segment = segment_create(
        workspace=workspace,
        name="Big cities",
        definition={"field": "city", "op": "in", "value": ["Paris", "Lyon", "Marseille"]},
    )
    audience_compute(segment_id=segment.pk)
    sale = campaign_create(
        workspace=workspace,
        name="Winter sale",
        channels=["display"],
        starts_at=day_start - timedelta(days=1),
        ends_at=day_start + timedelta(days=5),
        budget_total=budget,
        pacing=Campaign.Pacing.EVEN,
        targets=[{"segment": segment, "variant": "sale"}],
    )
    reminder = campaign_create(
        workspace=workspace,
        name="Cart reminder",
        channels=["display"],
        starts_at=day_start - timedelta(days=1),
        ends_at=day_start + timedelta(days=30),
        budget_total=Decimal("500"),
        budget_daily=Decimal("50"),
        pacing=Campaign.Pacing.ASAP,
        targets=[
            {
                "segment": None,
                "trigger_event": "cart_abandoned",
                "trigger_delay": timedelta(minutes=30),
                "variant": "cart-10",
                "discount_code": "CART10",
                "discount_percent": "10",
            }
        ],
    )
    # Activated as the marketer's click would (the display channel sends nothing itself).
    Campaign.objects.filter(pk__in=[sale.pk, reminder.pk]).update(status=Campaign.Status.ACTIVE, activated_at=day_start)
    creatives = {}
    for (w, h), _ in SIZES:
        creatives[(w, h)] = Creative.objects.create(
            workspace=workspace,
            name=f"Sale {w}x{h}",
            width=w,
            height=h,
            markup=f'<a href="{{{{click_url}}}}"><img src="https://maison.example/sale-{w}x{h}.png"></a>',
            landing_url="https://maison.example/soldes",
            advertiser_domain="maison.example",
            categories=["IAB22"],
        )
    cart_creative = Creative.objects.create(
        workspace=workspace,
        name="Cart 300x250",
        width=300,
        height=250,
        markup='<a href="{{click_url}}">{{product}}: -{{discount_percent}}% with {{discount_code}}</a>',
        landing_url="https://maison.example/panier",
        advertiser_domain="maison.example",
        categories=["IAB22"],
    )
    sale_line = LineItem(
        target=sale.targets.get(), base_cpm=Decimal("2.00"), min_cpm=Decimal("0.5"), max_cpm=Decimal("4"),
        cap_impressions=CAP, cap_hours=24,
    )  # fmt: skip
    sale_line.full_clean()
    sale_line.save()
    sale_line.creatives.set(creatives.values())
    cart_line = LineItem(
        target=reminder.targets.get(), base_cpm=Decimal("3.50"), min_cpm=Decimal("1"), max_cpm=Decimal("6"),
        trigger_hours=48,
    )  # fmt: skip
    cart_line.full_clean()
    cart_line.save()
    cart_line.creatives.set([cart_creative])
    consented = {p.pk for p in consenting}
    return workspace, sale, reminder, sale_line, cart_line, people, consented


def _cart(workspace, profile, at, rng):
    from customers.models import Event

    product = rng.choice(PRODUCTS)
    return Event(
        workspace=workspace,
        profile=profile,
        type="cart_abandoned",
        channel="web",
        occurred_at=at,
        properties={"sku": f"SKU-{PRODUCTS.index(product)}", "name": product, "price": 49.9},
        idempotency_key=f"cart-{profile.pk}-{at.timestamp():.0f}",
    )


class Clock:
    def __init__(self, start: float):
        self.now = start

    def __call__(self) -> float:
        return self.now


async def asgi(app, method: str, path: str, query: str = "", body: bytes = b"") -> tuple[int, bytes]:
    """One call of the bidder's ASGI interface, as uvicorn would make it."""
    scope = {"type": "http", "method": method, "path": path, "query_string": query.encode(), "headers": []}
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def request(rng: random.Random, people, n: int) -> tuple[dict, object | None, bool]:
    known = rng.random() < 0.7
    person = people[rng.randrange(len(people))] if known else None
    grants = rng.random() < 0.9
    city = next((c for c in CITIES if person is not None and c[0] == person.city), rng.choice(CITIES))
    size = rng.choices([s for s, _ in SIZES], [w for _, w in SIZES])[0]
    user = {"id": f"x{rng.getrandbits(40):x}", "consent": TCF_GRANTS if grants else TCF_REFUSES}
    user["buyeruid"] = f"ck{person.external_id}" if person is not None else f"anon{rng.getrandbits(40):x}"
    body = {
        "id": f"r{n}",
        "at": 2,
        "tmax": 120,
        "cur": ["EUR"],
        "imp": [
            {
                "id": "1",
                "banner": {"format": [{"w": size[0], "h": size[1]}]},
                "bidfloor": round(rng.lognormvariate(math.log(0.6), 0.4), 2),
                "bidfloorcur": "EUR",
            }
        ],
        "site": {"id": "s1", "domain": "news.example", "page": "https://news.example/article", "cat": ["IAB12"]},
        "device": {"ua": "Mozilla/5.0", "geo": {"country": "FRA", "city": city[0], "lat": city[1], "lon": city[2]}},
        "user": user,
        "regs": {"gdpr": 1},
    }
    return body, person, grants


async def simulate(args, django_objects, redis_url: str) -> dict:
    from django.db import close_old_connections, connection

    from bidder import config
    from bidder.app import Bidder
    from campaigns.models import Campaign
    from campaigns.services.lifecycle import campaign_transition
    from customers.models import Event
    from privacy.consent import consent_withdraw
    from programmatic.notices import notices_consume
    from programmatic.publish import state_publish, triggers_follow

    workspace, sale, reminder, sale_line, cart_line, people, consented = django_objects
    rng = random.Random(args.seed + 1)
    day_start = args.day_start
    clock = Clock(day_start.timestamp())
    settings = config.Settings.from_environment({"BIDDER_REDIS_URL": redis_url, "BIDDER_PUBLIC_URL": "http://bidder"})
    app = Bidder(settings, clock=clock)

    # Django's calls in one thread of their own (the event loop's thread may not use the ORM): one
    # database connection, closed at the end.
    worker = ThreadPoolExecutor(1)

    def django(fn, **kwargs):
        def run():
            close_old_connections()
            return fn(**kwargs)

        return asyncio.get_running_loop().run_in_executor(worker, run)

    began = time.perf_counter()
    published = await django(state_publish, workspace=workspace, now=day_start)
    published["seconds"] = round(time.perf_counter() - began, 2)
    state = orjson.loads(app_redis(redis_url).get(f"cible:{{w{workspace.pk}}}:state"))
    plan = state["campaigns"][str(sale.pk)]["plan"] / 1e9
    print(f"published: {published}; the sale's plan today: {plan:.2f} EUR", flush=True)

    weights = [w / sum(TRAFFIC) for w in TRAFFIC]
    per_hour = [round(args.requests * w) for w in weights]
    hours = []
    spend_by_campaign: dict[int, list[float]] = defaultdict(lambda: [0.0] * 24)
    impressions_seen: Counter = Counter()  # (person, window) -> the sale's impressions
    billed = Counter()  # line -> impressions billed
    billed_nanos = Counter()  # line -> clearing prices, in nanos
    violations: list[str] = []
    withdrawn: set[int] = set()
    paused_at = None
    n = 0
    started = time.perf_counter()
    for hour in range(24):
        row = Counter()
        count = per_hour[hour]
        if hour == 18:
            # A tenth of the consenting people withdraw their consent to ad targeting.
            leaving = [p for p in people if p.pk in consented and rng.random() < 0.1]
            for person in leaving:
                await django(consent_withdraw, profile=person, purposes=["ad_targeting"], channels=["display"])
            withdrawn = {p.pk for p in leaving}
        if hour == 20:
            # The marketer pauses the cart campaign from the admin.
            await django(
                lambda: campaign_transition(
                    campaign=Campaign.objects.get(pk=reminder.pk), to=Campaign.Status.PAUSED, reason="stock out"
                )
            )
            paused_at = clock.now
        for k in range(count):
            clock.now = day_start.timestamp() + hour * 3600 + (k + rng.random()) * 3600 / count
            if k % max(count // 12, 1) == 0 and k:
                # Every five minutes or so: the notice worker, and carts abandoned meanwhile.
                new = [
                    _cart(workspace, p, datetime.fromtimestamp(clock.now, day_start.tzinfo), rng)
                    for p in rng.sample(people, 3)
                ]
                saved = await django(Event.objects.bulk_create, objs=new)
                await django(
                    triggers_follow,
                    workspace_id=workspace.pk,
                    event_ids=[e.pk for e in saved],
                    now=datetime.fromtimestamp(clock.now, day_start.tzinfo),
                )
                await django(notices_consume, workspace_id=workspace.pk)
            body, person, grants = request(rng, people, n)
            n += 1
            row["requests"] += 1
            status, answer = await asgi(app, "POST", f"/openrtb2/{SLUG}", body=orjson.dumps(body))
            if status != 200:
                continue
            bid = orjson.loads(answer)["seatbid"][0]["bid"][0]
            row["bids"] += 1
            campaign = int(bid["cid"])
            if person is not None and (person.pk not in consented or not grants or person.pk in withdrawn):
                violations.append(
                    f"bid on person {person.pk} without consent at {clock.now - day_start.timestamp():.0f} s"
                )
            if campaign == reminder.pk and paused_at is not None:
                violations.append("a bid for the paused campaign")
            price = bid["price"]
            competitors = sorted(
                (rng.lognormvariate(math.log(1.3), 0.5) for _ in range(rng.randint(2, 6))), reverse=True
            )
            floor = body["imp"][0]["bidfloor"]
            if price < competitors[0]:
                await notice(app, bid["lurl"], competitors[0], rng, reason="102")
                row["losses"] += 1
                continue
            clearing = round(min(price, max(competitors[0], floor) + 0.01), 4)
            row["wins"] += 1
            await notice(app, bid["nurl"], clearing, rng)
            if rng.random() < 0.95:  # rendered: billed
                await notice(app, bid["burl"], clearing, rng)
                line = cart_line.pk if campaign == reminder.pk else sale_line.pk
                billed[line] += 1
                billed_nanos[line] += int(Decimal(str(clearing)) * 1_000_000)
                spend_by_campaign[campaign][hour] += clearing / 1000
                row["impressions"] += 1
                if campaign == sale.pk:
                    impressions_seen[(person.pk if person else None, int(clock.now // 86400))] += 1
        hours.append(row)
        cumulative = sum(spend_by_campaign[sale.pk][: hour + 1])
        print(
            f"{hour:02d}h  requests {row['requests']:6,}  bids {row['bids']:5,}  wins {row['wins']:5,}  "
            f"impressions {row['impressions']:5,}  sale {spend_by_campaign[sale.pk][hour]:7.3f} EUR "
            f"(cumulative {cumulative:7.3f}, plan {plan * (hour + 1) / 24:7.3f})  "
            f"carts {spend_by_campaign[reminder.pk][hour]:6.3f} EUR",
            flush=True,
        )
    elapsed = time.perf_counter() - started
    await django(notices_consume, workspace_id=workspace.pk)
    await django(lambda: connection.close())  # this thread's connection
    worker.shutdown()
    for (person, _window), seen in impressions_seen.items():
        if person is not None and seen > CAP:
            violations.append(f"person {person} saw {seen} impressions of the sale in one window (cap {CAP})")
    return {
        "plan": plan,
        "hours": hours,
        "spend": spend_by_campaign,
        "billed": billed,
        "billed_nanos": billed_nanos,
        "violations": violations,
        "elapsed": elapsed,
        "requests": n,
    }


def app_redis(url: str):
    import redis

    return redis.Redis.from_url(url)


async def notice(app, url: str, price: float, rng: random.Random, reason: str = "") -> None:
    parts = urlsplit(url.replace("${AUCTION_PRICE}", f"{price:.4f}").replace("${AUCTION_LOSS}", reason))
    for _ in range(2 if rng.random() < 0.1 else 1):  # an exchange's retry: counted once
        status, _ = await asgi(app, "GET", parts.path, parts.query)
        if status != 204:
            raise RuntimeError(f"notice {url} answered {status}")


def report(result: dict, django_objects, check_pacing: bool = True) -> int:
    from campaigns.models import LedgerEntry
    from programmatic.models import BidDay, BidderDay

    workspace, sale, reminder, sale_line, cart_line, *_ = django_objects
    plan = result["plan"]
    failures = list(result["violations"][:10])
    cumulative, worst, worst_hourly = 0.0, 0.0, 0.0
    reached = None
    for hour in range(24):
        spent = result["spend"][sale.pk][hour]
        cumulative += spent
        expected = plan * (hour + 1) / 24
        deviation = (cumulative - expected) / expected
        worst = max(worst, abs(deviation))
        if hour:
            worst_hourly = max(worst_hourly, abs(spent - plan / 24) / (plan / 24))
        if reached is None and cumulative >= 0.99 * plan:
            reached = hour + 1
    print(
        f"\neven pacing: the sale spent {cumulative:.3f} EUR of its {plan:.3f} EUR plan; worst hour-end deviation "
        f"from plan {worst:+.1%} (goal within 10 %), worst single hour {worst_hourly:.1%}; "
        f"plan reached at hour {reached or 'never'} (goal: not before 90 % of the day, 21.6 h)"
    )
    if check_pacing and worst > 0.10:
        failures.append(f"pacing off plan by {worst:.1%} at an hour's end")
    if check_pacing and reached is not None and reached < 21.6:
        failures.append(f"the plan was reached at hour {reached}, before 90 % of the day")
    for line, name in ((sale_line, "sale"), (cart_line, "cart reminder")):
        days = BidDay.objects.filter(line_item=line)
        impressions = sum(d.impressions for d in days)
        nanos = sum(d.spend_nanos for d in days)
        ledger = sum(
            LedgerEntry.objects.filter(campaign=line.target.campaign, source="programmatic").values_list(
                "amount", flat=True
            ),
            Decimal(0),
        )
        exact = (Decimal(result["billed_nanos"][line.pk]) / 1_000_000_000).quantize(
            Decimal("0.01"), rounding="ROUND_DOWN"
        )
        print(
            f"{name}: exchange billed {result['billed'][line.pk]:,} impressions for {result['billed_nanos'][line.pk] / 1e9:.6f} EUR; "
            f"bid days {impressions:,} impressions, {nanos / 1e9:.6f} EUR; ledger {ledger} EUR"
        )
        if impressions != result["billed"][line.pk] or nanos != result["billed_nanos"][line.pk]:
            failures.append(f"{name}: the bid days do not match the exchange's billing")
        if ledger != exact:
            failures.append(f"{name}: the ledger holds {ledger}, the billing {exact}")
    day = BidderDay.objects.filter(workspace=workspace).order_by("-day").first()
    if day is not None:
        print(
            f"bid requests recorded: {day.requests:,} (sent {result['requests']:,}), bid on {day.bid_requests:,}; no bid: {day.no_bid}"
        )
        if day.requests != result["requests"]:
            failures.append("the bidder's request count differs from the exchange's")
    print(f"{result['requests']:,} requests and their notices in {result['elapsed']:.0f} s of real time")
    for failure in failures:
        print(f"FAILED: {failure}")
    print("all checks passed" if not failures else f"{len(failures)} checks failed")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=48_000, help="bid requests over the day")
    parser.add_argument(
        "--budget", type=Decimal, default=Decimal("6"), help="the sale's total budget, EUR, over its six days left"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_url = os.environ.get("BENCH_EXCHANGE_REDIS_URL", "redis://127.0.0.1:6379/9")
    check_loopback(database_url)
    check_loopback(redis_url)
    ensure_database(database_url)
    env = postgres_env(database_url, "")  # Celery tasks in-process: no worker in a benchmark
    env["BIDDER_REDIS_URL"] = redis_url
    migrate(env)
    django_setup(env)
    return run(profiles=args.profiles, requests=args.requests, budget=args.budget, seed=args.seed, redis_url=redis_url)


def run(*, profiles: int, requests: int, budget: Decimal, seed: int, redis_url: str, check_pacing: bool = True) -> int:
    """Set up, play the day, report; 1 when a check failed (Django set up, BIDDER_REDIS_URL = redis_url).
    tests/programmatic runs it small, without the pacing checks (too few impressions an hour)."""
    import zoneinfo

    from django.utils import timezone

    app_redis(redis_url).flushdb()
    zone = zoneinfo.ZoneInfo(ZONE)
    today = timezone.now().astimezone(zone).date()
    day_start = datetime(today.year, today.month, today.day, tzinfo=zone)
    rng = random.Random(seed)
    started = time.perf_counter()
    objects = setup(profiles, budget, day_start, rng)
    print(
        f"set up {profiles:,} profiles and two display campaigns in {time.perf_counter() - started:.0f} s", flush=True
    )
    args = argparse.Namespace(requests=requests, seed=seed, day_start=day_start)
    result = asyncio.run(simulate(args, objects, redis_url))
    return report(result, objects, check_pacing=check_pacing)


if __name__ == "__main__":
    sys.exit(main())
