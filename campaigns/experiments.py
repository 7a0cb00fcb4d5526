"""Experiments: a control group that is never contacted, and A/B splits of a segment's audience,
so a team can tell what a campaign caused.

Each person of a campaign gets a place in [0, 65536) drawn from their id and the campaign's id by
a fixed integer hash that the database computes (the same in PostgreSQL and SQLite, and in Python
here), so a person's place never changes and no assignment is stored. The campaign's id gives an
odd multiplier m and an offset o (from SHA-256), and

    place = (((profile mod 2^31) * m + o) mod 2^31) div 32768

(multiplicative hashing: the top bits of the product spread consecutive ids evenly, and two
campaigns' multipliers scatter them independently).

The control group is the places below `holdout_percent` of the range; it is never contacted by
any target of the campaign. Targets on the same segment with a `split_weight` share the rest of
its places in proportion to their weights (an A/B test); a target without a weight reaches every
place above the control group.

Results (`experiment_results`) are read as intention to treat: every member of a target's
audience in its arm counts, contacted or not, against the members of the same audience in the
control group; an arm's conversions are its people's completed orders since the campaign was
activated (in the campaign's currency). For each arm: conversion rate and revenue per person,
and against control their difference with a 95 % interval (normal approximation for the rates,
Welch for revenue), a two-sided test, and the incremental conversions and revenue.
"""

import hashlib
import math
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Mod
from django.utils import timezone
from scipy import stats

from audiences.models import AudienceMember
from campaigns.models import Campaign, Target
from customers.models import Order, Profile

PLACES = 65_536
_MOD = 2**31


def _mix(campaign_id: int) -> tuple[int, int]:
    """The campaign's odd multiplier and offset (below 2^31), from a hash of its id: each campaign
    scatters people its own way, so one campaign's control group is not another's."""
    digest = hashlib.sha256(f"cible-experiment:{campaign_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % _MOD | 1, int.from_bytes(digest[4:8], "big") % _MOD


def place_of(profile_id: int, campaign_id: int) -> int:
    """A person's place in a campaign, as the database computes it (`place_expression`)."""
    multiplier, offset = _mix(campaign_id)
    return ((profile_id % _MOD) * multiplier + offset) % _MOD // 32768


def place_expression(campaign_id: int, field: str = "pk"):
    """The place of the row's profile (`field`) in the campaign, in SQL (integer arithmetic only,
    below 2^62: exact in PostgreSQL's bigint and SQLite's integers)."""
    multiplier, offset = _mix(campaign_id)
    x = Mod(Mod(F(field), Value(_MOD)) * Value(multiplier) + Value(offset), Value(_MOD))
    # Integer division: (x - x mod 32768) / 32768 is exact in both databases.
    return ExpressionWrapper((x - Mod(x, Value(32768))) / Value(32768), output_field=IntegerField())


def control_end(campaign: Campaign) -> int:
    """The places below this are the control group."""
    return int(Decimal(PLACES) * campaign.holdout_percent / 100)


def arms(campaign: Campaign) -> dict[int, tuple[int, int]]:
    """Each target's places [start, end): the places above the control group, shared by weight
    among the weighted targets of one segment."""
    low = control_end(campaign)
    ranges: dict[int, tuple[int, int]] = {}
    groups: dict[int, list[Target]] = {}
    for target in campaign.targets.order_by("pk"):
        if target.split_weight and target.segment_id:
            groups.setdefault(target.segment_id, []).append(target)
        else:
            ranges[target.pk] = (low, PLACES)
    for members in groups.values():
        total = sum(t.split_weight or 0 for t in members)
        cumulative = 0
        for target in members:
            start = low + (PLACES - low) * cumulative // total
            cumulative += target.split_weight or 0
            ranges[target.pk] = (start, low + (PLACES - low) * cumulative // total)
    return ranges


Rows = TypeVar("Rows", bound=QuerySet)


def in_arm(*, rows: Rows, target: Target, field: str = "pk") -> Rows:
    """Of `rows` (profiles, or rows naming a profile in `field`): those the target may contact,
    its arm outside the control group."""
    campaign = target.campaign
    start, end = arms(campaign).get(target.pk, (control_end(campaign), PLACES))
    if start == 0 and end == PLACES:
        return rows
    return rows.alias(_place=place_expression(campaign.pk, field)).filter(_place__gte=start, _place__lt=end)


def _group(campaign: Campaign, members, start: int, end: int, since: datetime, until: datetime) -> dict[str, Any]:
    """Size, converters, revenue and its sum of squares of the audience's people in [start, end)."""
    people = (
        Profile.objects.filter(workspace_id=campaign.workspace_id, pk__in=members)
        .alias(_place=place_expression(campaign.pk))
        .filter(_place__gte=start, _place__lt=end)
    )
    orders = Order.objects.filter(
        workspace_id=campaign.workspace_id,
        status=Order.Status.COMPLETED,
        currency=campaign.currency,
        ordered_at__gte=since,
        ordered_at__lt=until,
    )
    # Each person's revenue in the window (NULL without an order), then one aggregate: set-based.
    revenue = Subquery(
        orders.filter(profile_id=OuterRef("pk")).values("profile_id").annotate(total=Sum("amount")).values("total")[:1],
        output_field=DecimalField(max_digits=20, decimal_places=2),
    )
    figures = people.annotate(_revenue=revenue).aggregate(
        people=Count("pk"),
        converters=Count("pk", filter=Q(_revenue__isnull=False)),
        total=Sum("_revenue"),
        squares=Sum(F("_revenue") * F("_revenue")),
    )
    total = Decimal(figures["total"] or 0)
    return {
        "people": figures["people"],
        "converters": figures["converters"],
        "revenue": str(total.quantize(Decimal("0.01"))),
        "_sum": float(total),
        "_squares": float(figures["squares"] or 0),
    }


def _rates(group: dict[str, Any]) -> dict[str, Any]:
    n = group["people"]
    group["conversion_rate"] = None if not n else round(group["converters"] / n, 6)
    group["revenue_per_person"] = None if not n else round(group["_sum"] / n, 4)
    return group


def compare(treated: dict[str, Any], control: dict[str, Any], level: float = 0.95) -> dict[str, Any] | None:
    """The treated group against control: the difference in conversion rate (normal approximation,
    unpooled for the interval, pooled for the test) and in revenue per person (Welch), with the
    incremental conversions and revenue over the treated group."""
    n1, n0 = treated["people"], control["people"]
    if n1 < 2 or n0 < 2:
        return None
    z = float(stats.norm.ppf(0.5 + level / 2))
    p1, p0 = treated["converters"] / n1, control["converters"] / n0
    diff = p1 - p0
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    pooled = (treated["converters"] + control["converters"]) / (n1 + n0)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    p_value = 1.0 if se_pooled == 0 else float(2 * stats.norm.sf(abs(diff) / se_pooled))
    # Revenue per person, people without an order counting 0.
    m1, m0 = treated["_sum"] / n1, control["_sum"] / n0
    v1 = max(treated["_squares"] / n1 - m1 * m1, 0.0) * n1 / (n1 - 1)
    v0 = max(control["_squares"] / n0 - m0 * m0, 0.0) * n0 / (n0 - 1)
    se_rev = math.sqrt(v1 / n1 + v0 / n0)
    if se_rev > 0:
        df = (v1 / n1 + v0 / n0) ** 2 / ((v1 / n1) ** 2 / (n1 - 1) + (v0 / n0) ** 2 / (n0 - 1))
        t = float(stats.t.ppf(0.5 + level / 2, df))
        rev_p = float(2 * stats.t.sf(abs(m1 - m0) / se_rev, df))
    else:
        t, rev_p = 0.0, 1.0
    return {
        "uplift": round(diff, 6),
        "uplift_low": round(diff - z * se, 6),
        "uplift_high": round(diff + z * se, 6),
        "relative_uplift": None if p0 == 0 else round(diff / p0, 4),
        "p_value": round(p_value, 6),
        "significant": bool(p_value < 1 - level),
        "incremental_conversions": round(diff * n1, 1),
        "incremental_conversions_low": round((diff - z * se) * n1, 1),
        "incremental_conversions_high": round((diff + z * se) * n1, 1),
        "revenue_uplift_per_person": round(m1 - m0, 4),
        "incremental_revenue": round((m1 - m0) * n1, 2),
        "incremental_revenue_low": round((m1 - m0 - t * se_rev) * n1, 2),
        "incremental_revenue_high": round((m1 - m0 + t * se_rev) * n1, 2),
        "revenue_p_value": round(rev_p, 6),
    }


def experiment_results(
    *, campaign: Campaign, now: datetime | None = None, since: datetime | None = None, level: float = 0.95
) -> dict[str, Any]:
    """Each target's arm against the control group of its audience (and, in an A/B test, against
    the first arm of its segment), since the campaign's activation (or `since`, when later)."""
    now = now or timezone.now()
    started = campaign.activated_at or campaign.starts_at
    since = started if since is None else max(since, started)
    until = min(now, campaign.ends_at)
    ranges = arms(campaign)
    low = control_end(campaign)
    targets = list(campaign.targets.select_related("segment__audience").order_by("pk"))
    rows: list[dict[str, Any]] = []
    controls: dict[int, dict[str, Any]] = {}
    first_arm: dict[int, tuple[dict[str, Any], str]] = {}
    for target in targets:
        if target.segment is None:
            rows.append({"target": target.pk, "variant": target.variant, "skipped": "a triggered target"})
            continue
        segment_id = target.segment.pk
        members = AudienceMember.objects.current_of(target.segment.audience).values("profile_id")
        start, end = ranges[target.pk]
        arm = _rates(_group(campaign, members, start, end, since, until))
        row: dict[str, Any] = {
            "target": target.pk,
            "variant": target.variant,
            "segment": segment_id,
            "places": [start, end],
            "arm": _public(arm),
        }
        if low:
            if segment_id not in controls:
                controls[segment_id] = _rates(_group(campaign, members, 0, low, since, until))
            row["control"] = _public(controls[segment_id])
            row["against_control"] = compare(arm, controls[segment_id], level)
        if target.split_weight:
            if segment_id in first_arm:
                reference, name = first_arm[segment_id]
                row["against_variant"] = name
                row["against_first_variant"] = compare(arm, reference, level)
            else:
                first_arm[segment_id] = (arm, target.variant)
        rows.append(row)
    return {
        "campaign": campaign.pk,
        "holdout_percent": str(campaign.holdout_percent),
        "since": since,
        "until": until,
        "confidence": level,
        "currency": campaign.currency,
        "targets": rows,
    }


def incremental_figures(*, campaign: Campaign, since: datetime, now: datetime) -> dict[str, Any]:
    """The campaign's incremental figures against its control group since `since` (automated rules
    read them): incremental conversions and revenue summed over its measured targets, and the
    conversion-rate uplift weighted by their people. None without a control group."""
    empty = {"uplift": None, "incremental_conversions": None, "incremental_revenue": None}
    if not campaign.holdout_percent:
        return empty
    compared = [
        (row["arm"]["people"], row["against_control"])
        for row in experiment_results(campaign=campaign, now=now, since=since)["targets"]
        if row.get("against_control")
    ]
    people = sum(n for n, _ in compared)
    if not people:
        return empty
    return {
        "uplift": round(sum(n * c["uplift"] for n, c in compared) / people, 6),
        "incremental_conversions": round(sum(c["incremental_conversions"] for _, c in compared), 1),
        "incremental_revenue": Decimal(str(round(sum(c["incremental_revenue"] for _, c in compared), 2))),
    }


def _public(group: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in group.items() if not k.startswith("_")}


def sample_size(*, baseline: float, uplift: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """People needed in each group to detect a conversion rate going from `baseline` to
    `baseline + uplift` (absolute) with a two-sided test at `alpha` and the given power."""
    p1, p2 = baseline, baseline + uplift
    if not (0 < p1 < 1 and 0 < p2 < 1) or abs(uplift) < 1e-6:
        raise ValueError("The rates must stay between 0 and 1, and the uplift must be 0.000001 or more.")
    mean = (p1 + p2) / 2
    z_a, z_b = float(stats.norm.ppf(1 - alpha / 2)), float(stats.norm.ppf(power))
    n = (z_a * math.sqrt(2 * mean * (1 - mean)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / uplift**2
    if not math.isfinite(n) or n > 10**12:
        raise ValueError("So small a change cannot be detected: it needs more people than exist.")
    return math.ceil(n)
