"""Publishing the bidder's state to Redis (the keys of programmatic.state).

`state_publish` writes, for one workspace:
  - the people who may be targeted on display (a grant in force for ad targeting on display,
    neither suppressed nor erased), as one set replaced whole (built aside, then renamed);
  - the identifiers of those people the bidder recognises: Cible's browser ids (cookie
    identities, the buyer ids of cookie sync), the SHA-256 of their normalised e-mails (the
    hashed e-mails of `user.eids`) and their device ids (`device.ifa`), each with a time to live;
  - each line item's member set (its target's audience, fine threshold and area applied), under
    a new version each time, with the values of its value model;
  - for a retargeting line item (a triggered target: e.g. cart abandoned), the moment each person
    last did its event without buying since: when the line may bid on them (the target's delay,
    then the line item's hours) and the product its creatives name. New events reach it within
    seconds (`triggers_follow`, an event follow-up); a purchase takes the person out;
  - the line items (display targets of active campaigns that have one), their creatives, the
    campaigns' budgets left to the bidder, the currency table, and a new state version last, so
    the bidder switches to the new member sets and line items at once.

Money: budgets are nanos of the campaign's currency; what the campaign spent on other channels
(the ledger's spend not recorded from the bidder's notices) is taken off, and the bidder adds its
own billing notices from its counters.
"""

import hashlib
import html
import re
import time
import zoneinfo
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import orjson
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Workspace
from campaigns.activation import target_people
from campaigns.models import Campaign, CampaignChannel, LedgerEntry, Target
from campaigns.services import spend_planned_today
from campaigns.triggers import trigger_moments
from customers.models import Event, EventType, Identity, IdentityType, Profile
from insights.models import Score
from privacy.models import ConsentPurpose
from privacy.selectors import profiles_reachable
from programmatic import state as keys
from programmatic.models import LineItem

CHUNK = 10_000
IDENTITY_TTL = 7 * 86400  # republished daily by beat: a person who left is forgotten within a week
OLD_SET_TTL = 600  # a replaced member set stays this long for the requests already reading it
# Units of EUR per unit of each currency (the bidder converts floors and prices with it).
RATES = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17, "CHF": 1.06, "CAD": 0.68, "JPY": 0.0062, "SEK": 0.088, "DKK": 0.134}
NOTICE_SOURCE = "programmatic"  # the ledger's source for spend from the bidder's billing notices


def client():
    """The bidder's Redis, or None in the embedded default (no Redis: nothing to publish)."""
    import redis

    return redis.Redis.from_url(settings.BIDDER_REDIS_URL) if settings.BIDDER_REDIS_URL else None


def _nanos(amount: Decimal | None) -> int | None:
    return None if amount is None else int(amount * keys.NANOS)


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    chunk: list[int] = []
    for profile_id in ids:
        chunk.append(profile_id)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _replace_set(redis_client, key: str, ids: Iterable[int], ttl: int | None = None) -> int:
    """Fill a set aside, then put it in place in one step (RENAME): readers see the old or the new."""
    staging = f"{key}:next"
    redis_client.delete(staging)
    n = 0
    for chunk in _chunks(ids):
        redis_client.sadd(staging, *chunk)
        n += len(chunk)
    if n == 0:
        redis_client.delete(key)
        return 0
    redis_client.rename(staging, key)
    if ttl:
        redis_client.expire(key, ttl)
    return n


def _replace_hash(redis_client, key: str, rows: Iterable[tuple[int, bytes]], ttl: int = 2 * 86400) -> int:
    """As _replace_set, for a hash of profile id -> value. While it is filled aside, the follow-ups
    of new events write to both (`_hash_put`), so none is lost in the switch."""
    staging = f"{key}:next"
    redis_client.delete(staging)
    pipe = redis_client.pipeline(transaction=False)
    n = 0
    for profile_id, value in rows:
        pipe.hset(staging, profile_id, value)
        n += 1
        if n % CHUNK == 0:
            pipe.execute()
    pipe.execute()
    if n == 0:
        redis_client.delete(key)
        return 0
    redis_client.rename(staging, key)
    redis_client.expire(key, ttl)
    return n


def _hash_put(redis_client, key: str, rows: list[tuple[int, bytes]], gone: Iterable[int] = ()) -> None:
    gone = list(gone)
    for name in (key, f"{key}:next"):
        if name != key and not redis_client.exists(name):
            continue
        if rows:
            redis_client.hset(name, mapping=dict(rows))
        if gone:
            redis_client.hdel(name, *gone)
    if rows:
        redis_client.expire(key, 2 * 86400)


_WEB = re.compile(r"^https?://[^\s\"'<>]{1,2000}$", re.IGNORECASE)


def _text(value: Any, limit: int = 200) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    return html.escape(str(value)[:limit], quote=True) if isinstance(value, str) else ""


def _moment(line_item: LineItem, occurred_at: datetime, properties: Any) -> bytes:
    """When a retargeting line may bid on the person, and the product its creatives name: the
    event's name (or product, or sku), price, url and image, HTML-escaped; a url or image that is
    not http(s) is left out (it would run in the exchange's page)."""
    props = properties if isinstance(properties, dict) else {}
    starts = occurred_at + (line_item.target.trigger_delay or timedelta(0))
    url, image = props.get("url"), props.get("image")
    return orjson.dumps(
        {
            "from": starts.timestamp(),
            "until": (starts + timedelta(hours=line_item.trigger_hours)).timestamp(),
            "product": _text(props.get("name") or props.get("product") or props.get("sku")),
            "sku": _text(props.get("sku"), 100),
            "product_price": _text(props.get("price"), 30),
            "product_url": _text(url, 2000) if isinstance(url, str) and _WEB.match(url) else "",
            "product_image": _text(image, 2000) if isinstance(image, str) and _WEB.match(image) else "",
        }
    )


def trigger_rows(
    *, line_item: LineItem, people, now: datetime, event_ids: list[int] | None = None
) -> Iterable[tuple[int, bytes]]:
    """(profile id, moment) for the people a retargeting line may bid on now or later: the latest
    event of its target's trigger within the target's delay plus the line's hours, no purchase since."""
    target = line_item.target
    since = now - (target.trigger_delay or timedelta(0)) - timedelta(hours=line_item.trigger_hours)
    moments = trigger_moments(target=target, people=people, since=since, until=now, event_ids=event_ids)
    for profile_id, occurred_at, properties in moments.values_list("profile_id", "occurred_at", "properties").iterator(
        chunk_size=CHUNK
    ):
        yield profile_id, _moment(line_item, occurred_at, properties)


def triggers_follow(*, workspace_id: int, event_ids: list[int], now: datetime | None = None, redis_client=None) -> int:
    """New events reach the retargeting line items at once: a trigger event puts its person in
    (with its product), a purchase takes them out. Returns how many entries changed."""
    r = redis_client or client()
    if r is None:
        return 0
    now = now or timezone.now()
    workspace = Workspace.objects.get(pk=workspace_id)
    lines = [li for li in live_line_items(workspace=workspace, now=now) if li.target.trigger_event]
    if not lines:
        return 0
    people = consented_people(workspace=workspace, now=now)
    buyers = list(
        Event.objects.filter(workspace_id=workspace_id, pk__in=event_ids, type=EventType.PURCHASE)
        .values_list("profile_id", flat=True)
        .distinct()
    )
    changed = 0
    for line_item in lines:
        rows = list(trigger_rows(line_item=line_item, people=people, now=now, event_ids=event_ids))
        gone: list[int] = []
        if buyers:
            # The buyers' moments, computed again over all their events: what the purchase leaves.
            kept = dict(trigger_rows(line_item=line_item, people=people.filter(pk__in=buyers), now=now))
            rows += list(kept.items())
            gone = [pk for pk in buyers if pk not in kept]
        _hash_put(r, keys.trigger_key(workspace_id, line_item.pk), rows, gone)
        changed += len(rows) + len(gone)
    return changed


def consented_people(*, workspace: Workspace, now: datetime):
    return profiles_reachable(
        profiles=Profile.objects.filter(workspace_id=workspace.pk),
        workspace_id=workspace.pk,
        purpose=ConsentPurpose.AD_TARGETING,
        channel=CampaignChannel.DISPLAY,
        at=now,
    )


def _identity_key(workspace_id: int, kind: str, value: str) -> str:
    """The bidder's key for a Cible identity: the SHA-256 of an e-mail (user.eids), a device id
    (device.ifa), or a browser id (user.buyeruid, cookie sync)."""
    if kind == IdentityType.EMAIL:
        return keys.identity_key(workspace_id, "email_sha256", hashlib.sha256(value.encode()).hexdigest())
    if kind == IdentityType.EMAIL_SHA256:
        return keys.identity_key(workspace_id, "email_sha256", value.lower())
    if kind == IdentityType.DEVICE:
        return keys.identity_key(workspace_id, "device", value.lower())
    return keys.identity_key(workspace_id, "buyer", value)


def _identities(redis_client, workspace: Workspace, people) -> int:
    identities = Identity.objects.filter(
        workspace_id=workspace.pk,
        type__in=[IdentityType.COOKIE, IdentityType.EMAIL, IdentityType.EMAIL_SHA256, IdentityType.DEVICE],
        profile_id__in=people.values("pk"),
    ).values_list("type", "value", "profile_id")
    pipe = redis_client.pipeline(transaction=False)
    n = 0
    for kind, value, profile_id in identities.iterator(chunk_size=CHUNK):
        pipe.set(_identity_key(workspace.pk, kind, value), profile_id, ex=IDENTITY_TTL)
        n += 1
        if n % CHUNK == 0:
            pipe.execute()
    pipe.execute()
    return n


def _budgets(campaign: Campaign, now: datetime) -> dict[str, Any]:
    """The budgets left to the bidder: the campaign's, less what other channels spent; and when
    pacing evenly, today's plan (campaigns' spend_planned_today: what remained of the total at the
    start of the day over the days left, within the daily budget) less other channels' spend today."""
    other = LedgerEntry.objects.filter(campaign=campaign, kind=LedgerEntry.Kind.SPEND).exclude(source=NOTICE_SOURCE)
    spent_elsewhere = other.aggregate(s=Sum("amount"))["s"] or Decimal(0)
    today = timezone.localtime(now, zoneinfo.ZoneInfo(campaign.workspace.time_zone)).date()
    spent_elsewhere_today = other.filter(day=today).aggregate(s=Sum("amount"))["s"] or Decimal(0)
    total = None if campaign.budget_total is None else max(campaign.budget_total - spent_elsewhere, Decimal(0))
    daily = None if campaign.budget_daily is None else max(campaign.budget_daily - spent_elsewhere_today, Decimal(0))
    plan = None
    if campaign.pacing == Campaign.Pacing.EVEN:
        planned = spend_planned_today(campaign=campaign, now=now)
        plan = None if planned is None else max(planned - spent_elsewhere_today, Decimal(0))
    return {"total": _nanos(total), "daily": _nanos(daily), "plan": _nanos(plan), "pacing": campaign.pacing}


def click_url(creative, target: Target) -> str:
    """The landing page with the campaign's UTM parameters, so the site's analytics and Cible's
    events name the campaign a click came from."""
    parts = urlsplit(creative.landing_url)
    utm = urlencode(
        {
            "utm_source": "cible",
            "utm_medium": "display",
            "utm_campaign": str(target.campaign_id),
            "utm_content": f"{target.pk}-{creative.pk}",
        }
    )
    return urlunsplit(parts._replace(query=f"{parts.query}&{utm}" if parts.query else utm))


def _creative(creative, target: Target) -> dict[str, Any]:
    """A creative as the bidder shows it: the landing page, click URL and the target's offer put
    in its markup (HTML-escaped); a retargeting line's product tokens stay for the bidder."""
    offer = "" if target.discount_percent is None else f"{target.discount_percent.normalize():f}"
    adm = creative.markup
    for token, value in (
        ("landing_url", creative.landing_url),
        ("click_url", click_url(creative, target)),
        ("discount_code", target.discount_code),
        ("discount_percent", offer),
    ):
        adm = adm.replace("{{" + token + "}}", html.escape(value, quote=True))
    return {
        "id": creative.pk,
        "w": creative.width,
        "h": creative.height,
        "adm": adm,
        "adomain": [creative.advertiser_domain],
        "cat": list(creative.categories),
    }


def _line(line_item: LineItem, members_version: int | None) -> dict[str, Any]:
    campaign = line_item.target.campaign
    cap = None
    if line_item.cap_impressions and line_item.cap_hours:
        cap = {"max": line_item.cap_impressions, "seconds": line_item.cap_hours * 3600}
    area = line_item.area or None
    if area:
        area = {
            "countries": [c.upper() for c in area.get("countries", [])],
            "regions": [r.casefold() for r in area.get("regions", [])],
            "cities": [c.casefold() for c in area.get("cities", [])],
            "circles": [[c["lat"], c["lon"], c["km"]] for c in area.get("circles", [])],
        }
    return {
        "id": line_item.pk,
        "campaign": campaign.pk,
        "target": line_item.target_id,
        "currency": campaign.currency,
        "starts": campaign.starts_at.timestamp(),
        "ends": campaign.ends_at.timestamp(),
        "inventory": line_item.inventory or ["site", "app"],
        "members": None if members_version is None else {"version": members_version},
        "trigger": bool(line_item.target.trigger_event),
        "value_model": line_item.value_model_id,
        "base_cpm": float(line_item.base_cpm),
        "min_cpm": float(line_item.min_cpm),
        "max_cpm": float(line_item.max_cpm),
        "cap": cap,
        "dayparts": line_item.dayparts or None,
        "days": line_item.weekdays or None,
        "area": area,
        "creatives": [_creative(c, line_item.target) for c in line_item.creatives.all() if c.active],
    }


def live_line_items(*, workspace: Workspace, now: datetime):
    """The line items of display targets of the workspace's active campaigns, running now."""
    items = LineItem.objects.filter(
        workspace_id=workspace.pk,
        target__campaign__status=Campaign.Status.ACTIVE,
        target__campaign__starts_at__lte=now,
        target__campaign__ends_at__gt=now,
    ).select_related("target__campaign", "target__segment__audience")
    return [li for li in items.prefetch_related("creatives") if CampaignChannel.DISPLAY in li.target.campaign.channels]


def state_publish(*, workspace: Workspace, now: datetime | None = None, redis_client=None) -> dict[str, int]:
    """Publish the workspace's whole state (see the module); returns what it wrote."""
    now = now or timezone.now()
    r = redis_client or client()
    if r is None:
        return {"lines": 0, "consented": 0, "identities": 0, "members": 0}
    people = consented_people(workspace=workspace, now=now)
    consented = _replace_set(r, keys.consent_key(workspace.pk), people.values_list("pk", flat=True).iterator())
    identities = _identities(r, workspace, people)
    lines, members, campaigns = [], 0, {}
    version = time.time_ns()
    for line_item in live_line_items(workspace=workspace, now=now):
        target = line_item.target
        members_version = None
        if target.trigger_event:
            members += _replace_hash(
                r,
                keys.trigger_key(workspace.pk, line_item.pk),
                trigger_rows(line_item=line_item, people=people, now=now),
            )
        elif target.segment is not None:
            targeted = target_people(target=target, now=now)
            ids: Iterable[int] = (
                []
                if targeted is None
                else targeted.filter(pk__in=people.values("pk")).values_list("pk", flat=True).iterator()
            )
            members += _replace_set(r, keys.members_key(workspace.pk, line_item.pk, version), ids, ttl=2 * 86400)
            members_version = version
        if line_item.value_model_id is not None:
            _values(r, workspace, line_item)
        lines.append(_line(line_item, members_version))
        campaign = target.campaign
        campaigns[str(campaign.pk)] = _budgets(campaign, now)
    state = {
        "workspace": workspace.pk,
        "time_zone": workspace.time_zone,
        "currency": workspace.currency,
        "rates": RATES,
        "campaigns": campaigns,
        "lines": lines,
        "published_at": now.isoformat(),
    }
    before = r.get(keys.state_key(workspace.pk))
    r.hset(keys.DIRECTORY, workspace.slug, workspace.pk)
    r.set(keys.state_key(workspace.pk), orjson.dumps(state))
    r.set(keys.version_key(workspace.pk), version)
    # The member sets the state no longer names go, once the requests reading them are answered.
    for line in orjson.loads(before).get("lines", []) if before else []:
        if line.get("members") is not None:
            r.expire(keys.members_key(workspace.pk, line["id"], line["members"]["version"]), OLD_SET_TTL)
    return {"lines": len(lines), "consented": consented, "identities": identities, "members": members}


def _values(r, workspace: Workspace, line_item: LineItem) -> None:
    model = line_item.value_model
    if model is None or model.version == 0:
        return
    scores = Score.objects.filter(model_id=model.pk, version=model.version).values_list("profile_id", "score")
    key = keys.value_key(workspace.pk, model.pk)
    pipe = r.pipeline(transaction=False)
    n = 0
    for profile_id, score in scores.iterator(chunk_size=CHUNK):
        pipe.hset(key, profile_id, score)
        n += 1
        if n % CHUNK == 0:
            pipe.execute()
    pipe.expire(key, 2 * 86400)
    pipe.execute()


def people_forget(
    *, workspace_id: int, profile_ids: list[int], identities: Iterable[tuple[str, str]] = (), redis_client=None
) -> None:
    """Take people out of the consent set and the retargeting moments at once (a withdrawal, a
    suppression, an erasure): the next bid request sees it. The identifiers given go too (an
    erasure); others expire with their time to live."""
    if not profile_ids:
        return
    r = redis_client or client()
    if r is None:
        return
    r.srem(keys.consent_key(workspace_id), *profile_ids)
    raw = r.get(keys.state_key(workspace_id))
    for line in orjson.loads(raw).get("lines", []) if raw else []:
        if line.get("trigger"):
            _hash_put(r, keys.trigger_key(workspace_id, line["id"]), [], profile_ids)
    names = [_identity_key(workspace_id, kind, value) for kind, value in identities]
    for start in range(0, len(names), CHUNK):
        r.delete(*names[start : start + CHUNK])


def people_refresh(
    *, workspace_id: int, profile_ids: list[int], gone_ids: Iterable[int] = (), redis_client=None
) -> dict[str, int]:
    """After a merge or an unmerge, at once: the profiles merged away leave the bidder's state; the
    others are in the consent set, the identity map (their identifiers now lead to them) and the
    live member sets and retargeting moments exactly as a full publication would put them."""
    r = redis_client or client()
    if r is None:
        return {}
    gone = list(gone_ids)
    people_forget(workspace_id=workspace_id, profile_ids=gone, redis_client=r)
    workspace = Workspace.objects.get(pk=workspace_id)
    now = timezone.now()
    consenting = consented_people(workspace=workspace, now=now).filter(pk__in=list(profile_ids))
    consented = set(consenting.values_list("pk", flat=True))
    others = sorted(set(profile_ids) - consented)
    if others:
        held = Identity.objects.filter(profile_id__in=others).values_list("type", "value")
        people_forget(workspace_id=workspace_id, profile_ids=others, identities=list(held), redis_client=r)
    if consented:
        r.sadd(keys.consent_key(workspace_id), *consented)
    identities = _identities(r, workspace, Profile.objects.filter(pk__in=consented))
    raw = r.get(keys.state_key(workspace_id))
    lines = {line["id"]: line for line in (orjson.loads(raw).get("lines", []) if raw else [])}
    members = 0
    for line_item in LineItem.objects.filter(pk__in=list(lines)).select_related("target__campaign", "target__segment"):
        line = lines[line_item.pk]
        if line.get("trigger"):
            rows = list(trigger_rows(line_item=line_item, people=consenting, now=now))
            kept = {pk for pk, _ in rows}
            _hash_put(
                r, keys.trigger_key(workspace_id, line_item.pk), rows, [pk for pk in profile_ids if pk not in kept]
            )
            members += len(rows)
        elif line.get("members") is not None and line_item.target.segment_id is not None:
            key = keys.members_key(workspace_id, line_item.pk, line["members"]["version"])
            targeted = target_people(target=line_item.target, now=now)
            inside = set() if targeted is None else set(targeted.filter(pk__in=consented).values_list("pk", flat=True))
            if inside:
                r.sadd(key, *inside)
            outside = [pk for pk in [*profile_ids, *gone] if pk not in inside]
            if outside:
                r.srem(key, *outside)
            members += len(inside)
    return {"consented": len(consented), "identities": identities, "members": members, "gone": len(gone)}


def campaign_withdraw(*, workspace_id: int, campaign_id: int, redis_client=None) -> int:
    """Take a campaign's line items out of the published state at once (a pause, a cancellation):
    the state is rewritten without them under a new version; returns how many went."""
    r = redis_client or client()
    if r is None:
        return 0
    raw = r.get(keys.state_key(workspace_id))
    if not raw:
        return 0
    state = orjson.loads(raw)
    kept = [line for line in state.get("lines", []) if line["campaign"] != campaign_id]
    removed = len(state.get("lines", [])) - len(kept)
    if removed:
        state["lines"] = kept
        r.set(keys.state_key(workspace_id), orjson.dumps(state))
        r.set(keys.version_key(workspace_id), time.time_ns())
    return removed
