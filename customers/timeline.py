"""One person's journey across channels, on one timeline: what they did (events), bought
(orders), agreed to (consents, from privacy), received (campaign touches, from campaigns) and
how their profile was formed (identifiers first seen, merges).

Customers sits low in the layers, so the apps above register a source here from their
AppConfig.ready; each returns its entries for one profile, newest first, up to a limit.
"""

import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils.translation import gettext

from customers.models import Channel, Event, EventType, Identity, IdentityType, Order, Profile, ProfileMerge

MAX_ENTRIES = 500


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # event, order, consent, touch, identity, merge
    channel: str  # a Channel value, or "" when none applies
    title: str  # what happened, in the reader's language
    detail: str = ""
    ref: str = ""  # the row behind it, "<kind>:<id>"


# (profile, before, limit, channels) -> entries at or before `before`, newest first
Source = Callable[[Profile, datetime | None, int, frozenset[str] | None], Iterable[Entry]]
_sources: dict[str, Source] = {}


def timeline_source_register(*, name: str, source: Source) -> None:
    _sources[name] = source


def _events(profile: Profile, before: datetime | None, limit: int, channels: frozenset[str] | None):
    rows = Event.objects.filter(profile=profile)
    if before is not None:
        rows = rows.filter(occurred_at__lte=before)
    if channels is not None:
        rows = rows.filter(channel__in=channels)
    labels = dict(EventType.choices)
    for pk, kind, channel, at, properties in rows.order_by("-occurred_at", "-pk").values_list(
        "pk", "type", "channel", "occurred_at", "properties"
    )[:limit]:
        detail = ", ".join(f"{k}: {v}" for k, v in list((properties or {}).items())[:4] if isinstance(v, (str, int)))
        yield Entry(at, "event", channel, str(labels.get(kind, kind)), detail[:200], f"event:{pk}")


def _orders(profile: Profile, before: datetime | None, limit: int, channels: frozenset[str] | None):
    rows = Order.objects.filter(profile=profile)
    if before is not None:
        rows = rows.filter(ordered_at__lte=before)
    if channels is not None:
        rows = rows.filter(channel__in=channels)
    statuses = dict(Order.Status.choices)
    for pk, order_id, amount, currency, at, channel, status in rows.order_by("-ordered_at", "-pk").values_list(
        "pk", "order_id", "amount", "currency", "ordered_at", "channel", "status"
    )[:limit]:
        label = gettext("Order %(order)s: %(amount)s %(currency)s") % {
            "order": order_id,
            "amount": amount,
            "currency": currency,
        }
        yield Entry(at, "order", channel, label, str(statuses.get(status, status)), f"order:{pk}")


_IDENTITY_CHANNEL: dict[str, str] = {IdentityType.COOKIE: Channel.WEB, IdentityType.DEVICE: Channel.APP}


def _profile_forming(profile: Profile, before: datetime | None, limit: int, channels: frozenset[str] | None):
    types: dict[str, Any] = dict(IdentityType.choices)
    identities = Identity.objects.filter(profile=profile)
    merges = ProfileMerge.objects.filter(survivor=profile)
    if before is not None:
        identities = identities.filter(created_at__lte=before)
        merges = merges.filter(merged_at__lte=before)
    found = []
    for pk, kind, at in identities.order_by("-created_at").values_list("pk", "type", "created_at")[:limit]:
        channel = _IDENTITY_CHANNEL.get(kind, "")
        if channels is None or channel in channels:
            label = gettext("Identifier first seen: %(type)s") % {"type": types.get(kind, kind)}
            found.append(Entry(at, "identity", channel, label, "", f"identity:{pk}"))
    if channels is None:
        for merge_row in merges.order_by("-merged_at")[:limit]:
            if merge_row.reason == ProfileMerge.Reason.RULE:
                how = gettext("by the %(type)s match rule") % {
                    "type": types.get(merge_row.rule_type, merge_row.rule_type)
                }
            else:
                how = gettext("by hand")
            label = gettext("Profile %(external_id)s merged in, %(how)s") % {
                "external_id": merge_row.merged_external_id,
                "how": how,
            }
            detail = gettext("split back") if merge_row.unmerged_at else ""
            found.append(Entry(merge_row.merged_at, "merge", "", label, detail, f"merge:{merge_row.pk}"))
    found.sort(key=lambda e: e.at, reverse=True)
    return found


timeline_source_register(name="customers.events", source=_events)
timeline_source_register(name="customers.orders", source=_orders)
timeline_source_register(name="customers.identities", source=_profile_forming)


def _key(entry: Entry) -> tuple:
    """The timeline's order, newest first; entries of one moment in a fixed order, so that a page
    ends at an exact place within a moment."""
    kind, _, pk = entry.ref.partition(":")
    return (entry.at, kind, int(pk) if pk.isdigit() else 0)


def profile_timeline(
    *,
    profile: Profile,
    before: datetime | None = None,
    skip: int = 0,
    limit: int = 100,
    channels: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The person's journey, newest first: `limit` entries at or before `before`, past the first
    `skip` entries of that exact moment (those the previous page showed), each with its time in the
    workspace's time zone; `next_before` and `next_skip` continue it."""
    limit = max(1, min(limit, MAX_ENTRIES))
    skip = max(0, skip) if before is not None else 0
    wanted = frozenset(channels) if channels is not None else None
    entries = sorted(
        (entry for source in _sources.values() for entry in source(profile, before, limit + skip + 1, wanted)),
        key=_key,
        reverse=True,
    )
    if skip:
        at_moment = [entry for entry in entries if entry.at == before]
        shown = {id(entry) for entry in at_moment[:skip]}
        entries = [entry for entry in entries if id(entry) not in shown]
    page, more = entries[:limit], len(entries) > limit
    tz = zoneinfo.ZoneInfo(profile.workspace.time_zone)
    next_before = page[-1].at if more and page else None
    next_skip = 0
    if next_before is not None:
        next_skip = sum(1 for entry in page if entry.at == next_before)
        if next_before == before:
            next_skip += skip
    return {
        "time_zone": profile.workspace.time_zone,
        "entries": [
            {
                "at": entry.at.astimezone(tz),
                "kind": entry.kind,
                "channel": entry.channel,
                "title": entry.title,
                "detail": entry.detail,
                "ref": entry.ref,
            }
            for entry in page
        ],
        "next_before": next_before,
        "next_skip": next_skip,
    }
