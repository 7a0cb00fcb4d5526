"""Budget reallocation: move the targets' budget shares toward those that perform best.

The arithmetic, for a campaign with several targets, over a look-back window:
- a target's share is its `budget_share`, or an equal split when none is set;
- a target with fewer than `learning_conversions` conversions, or no spend, is still learning: it
  keeps its share, neither cut nor raised;
- the other targets share what is left in proportion to their score: ROAS, or 1 / CPA, or the
  incremental ROAS: the revenue the target caused (against the campaign's control group, from its
  experiment, campaigns.experiments) over its spend, both since the activation; a target whose
  incremental conversions are fewer than `learning_conversions` is still learning;
- none gets less than `min_share` percent: a target below it is set to it and the rest is shared
  again among the others (water-filling);
- shares are rounded to hundredths, the rounding remainder going to the best target, so the
  shares add up to what they added up to before.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext

from campaigns.experiments import experiment_results
from campaigns.models import Campaign, LedgerEntry, Target
from core.errors import CommonErrorCode
from core.time import local_day
from optimisation.errors import OptimisationErrorCode
from reporting.kpis import kpis

HUNDREDTH = Decimal("0.01")
METRICS = ("roas", "cpa", "incremental_roas")


@dataclass
class TargetFigures:
    target: Target
    share: Decimal
    spend: Decimal
    conversions: int
    revenue: Decimal

    @property
    def roas(self) -> Decimal | None:
        return kpis(impressions=0, clicks=0, spend=self.spend, conversions=self.conversions, revenue=self.revenue)[
            "roas"
        ]

    @property
    def cpa(self) -> Decimal | None:
        return kpis(impressions=0, clicks=0, spend=self.spend, conversions=self.conversions, revenue=self.revenue)[
            "cpa"
        ]


def current_shares(targets: list[Target]) -> dict[int, Decimal]:
    given = {t.pk: t.budget_share for t in targets if t.budget_share is not None}
    if targets and len(given) == len(targets):  # every target has its share set
        return given
    equal = (Decimal(100) / len(targets)).quantize(HUNDREDTH, rounding=ROUND_DOWN) if targets else Decimal(0)
    shares = {t.pk: equal for t in targets}
    if targets:
        shares[targets[0].pk] += Decimal(100) - equal * len(targets)
    return shares


def allocate(
    figures: list[TargetFigures], *, metric: str, min_share: Decimal, learning_conversions: int
) -> dict[int, Decimal]:
    """The new shares by target id (pure arithmetic; see the module's docstring)."""
    learning = [f for f in figures if f.conversions < learning_conversions or not f.spend]
    judged = [f for f in figures if f not in learning]
    new = {f.target.pk: f.share for f in learning}
    pool = sum((f.share for f in judged), Decimal(0))
    if not judged:
        return new
    if metric == "roas":
        scores = {f.target.pk: f.revenue / f.spend for f in judged}
    else:
        scores = {f.target.pk: f.conversions / f.spend for f in judged}  # 1 / CPA
    if min_share * len(judged) > pool:
        floor = (pool / len(judged)).quantize(HUNDREDTH, rounding=ROUND_DOWN)
    else:
        floor = min_share
    fixed: dict[int, Decimal] = {}
    while True:
        free = [pk for pk in scores if pk not in fixed]
        left = pool - sum(fixed.values(), Decimal(0))
        total_score = sum((scores[pk] for pk in free), Decimal(0))
        raw = {pk: (left * scores[pk] / total_score if total_score else left / len(free)) for pk in free}
        below = [pk for pk, value in raw.items() if value < floor]
        if not below:
            break
        for pk in below:
            fixed[pk] = floor
    raw.update(fixed)
    rounded = {pk: value.quantize(HUNDREDTH, rounding=ROUND_DOWN) for pk, value in raw.items()}
    best = max(scores, key=lambda pk: (scores[pk], -pk))
    rounded[best] += pool - sum(rounded.values(), Decimal(0))
    new.update(rounded)
    return new


def recommendation(
    *,
    campaign: Campaign,
    metric: str = "roas",
    days: int = 7,
    min_share: Decimal = Decimal(10),
    learning_conversions: int = 5,
    basis: str = "attributed",
) -> dict[str, Any]:
    """What reallocation would do now, with the figures behind it."""
    from reporting.models import DailyRollup

    errors = {}
    if metric not in METRICS:
        errors["metric"] = ValidationError(
            gettext("Choose roas, cpa or incremental_roas."), code=CommonErrorCode.INVALID_CHOICE
        )
    elif metric == "incremental_roas" and not campaign.holdout_percent:
        errors["metric"] = ValidationError(
            gettext("The incremental ROAS needs a control group: set the campaign's holdout_percent."),
            code=OptimisationErrorCode.NO_CONTROL_GROUP,
        )
    if not 1 <= days <= 90:
        errors["days"] = ValidationError(gettext("Between 1 and 90 days."), code=CommonErrorCode.INVALID)
    if not Decimal(0) <= min_share <= Decimal(100):
        errors["min_share"] = ValidationError(gettext("Between 0 and 100 percent."), code=CommonErrorCode.INVALID)
    targets = list(campaign.targets.order_by("id"))
    if len(targets) < 2:
        errors["non_field_errors"] = ValidationError(
            gettext("Reallocation needs a campaign with two targets or more."),
            code=OptimisationErrorCode.TOO_FEW_TARGETS,
        )
    if errors:
        raise ValidationError(errors)
    today = local_day(campaign.workspace, timezone.now())
    since = today - timedelta(days=days - 1)
    conversions, revenue = (
        ("conversions", "revenue") if basis == "attributed" else ("reported_conversions", "reported_revenue")
    )
    sums: dict[int, Mapping[str, Any]] = {
        row["target_id"]: row
        for row in DailyRollup.objects.filter(campaign=campaign, target__isnull=False, day__gte=since, day__lte=today)
        .order_by()
        .values("target_id")
        .annotate(spend=Sum("spend"), conversions=Sum(conversions), revenue=Sum(revenue))
    }
    if metric == "incremental_roas":
        sums = _incremental_sums(campaign)
        since = local_day(campaign.workspace, campaign.activated_at or campaign.starts_at)
    shares = current_shares(targets)
    figures = [
        TargetFigures(
            target=t,
            share=shares[t.pk],
            spend=(sums.get(t.pk) or {}).get("spend") or Decimal(0),
            conversions=(sums.get(t.pk) or {}).get("conversions") or 0,
            revenue=(sums.get(t.pk) or {}).get("revenue") or Decimal(0),
        )
        for t in targets
    ]
    new = allocate(
        figures,
        metric="cpa" if metric == "cpa" else "roas",
        min_share=min_share,
        learning_conversions=learning_conversions,
    )
    return {
        "metric": metric,
        "days": days,
        "since": since,
        "min_share": min_share,
        "learning_conversions": learning_conversions,
        "targets": [
            {
                "target": f.target.pk,
                "name": str(f.target),
                "spend": f.spend,
                "conversions": f.conversions,
                "revenue": f.revenue,
                "roas": f.roas,
                "cpa": f.cpa,
                "learning": f.conversions < learning_conversions or not f.spend,
                "share": f.share,
                "new_share": new[f.target.pk],
                "change": new[f.target.pk] - f.share,
            }
            for f in figures
        ],
        "moves": sum(1 for f in figures if new[f.target.pk] != f.share),
    }


def _incremental_sums(campaign: Campaign) -> dict[int, Mapping[str, Any]]:
    """Per target: its spend since the activation, and the conversions and revenue it caused over
    the same time (its experiment against the control group; none counted below zero)."""
    from reporting.models import DailyRollup

    spend = dict(
        DailyRollup.objects.filter(campaign=campaign, target__isnull=False)
        .order_by()
        .values("target_id")
        .annotate(spend=Sum("spend"))
        .values_list("target_id", "spend")
    )
    sums: dict[int, Mapping[str, Any]] = {}
    for row in experiment_results(campaign=campaign)["targets"]:
        caused = row.get("against_control") or {}
        sums[row["target"]] = {
            "spend": spend.get(row["target"]) or Decimal(0),
            "conversions": max(int(caused.get("incremental_conversions") or 0), 0),
            "revenue": max(Decimal(str(caused.get("incremental_revenue") or 0)), Decimal(0)),
        }
    return sums


def reallocation_apply(
    *, campaign: Campaign, actor=None, source: str = "api", reason: str = "", **options
) -> dict[str, Any]:
    """Set the recommended shares; each target whose share moves gets a ledger entry."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().select_related("workspace").get(pk=campaign.pk)
        if locked.is_final:
            raise ValidationError(
                {
                    "non_field_errors": ValidationError(
                        gettext("A %(status)s campaign's budget is closed.") % {"status": locked.status},
                        code=OptimisationErrorCode.FINAL,
                    )
                }
            )
        plan = recommendation(campaign=locked, **options)
        now = timezone.now()
        day = local_day(locked.workspace, now)
        budget = locked.budget_total or Decimal(0)
        targets = {t.pk: t for t in locked.targets.all()}
        for row in plan["targets"]:
            target = targets[row["target"]]
            if target.budget_share == row["new_share"]:
                continue
            old = row["share"]
            target.budget_share = row["new_share"]
            target.save(update_fields=["budget_share"])
            if row["change"] == 0:
                continue
            LedgerEntry.objects.create(
                workspace_id=locked.workspace_id,
                campaign=locked,
                kind=LedgerEntry.Kind.BUDGET_SHARE,
                amount=(budget * row["change"] / 100).quantize(HUNDREDTH),
                balance=(budget * row["new_share"] / 100).quantize(HUNDREDTH),
                currency=locked.currency,
                target=target,
                day=day,
                occurred_at=now,
                idempotency_key=f"share-{target.pk}-{now.timestamp()}",
                source=source,
                reason=(
                    f"{plan['metric'].upper()} reallocation over {plan['days']} days: {old}% -> {row['new_share']}%"
                    + (f". {reason}" if reason else "")
                ),
                author=actor,
            )
    return plan
