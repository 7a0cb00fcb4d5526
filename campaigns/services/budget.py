"""Budgets and spend: every change is a ledger entry, written under a lock on the campaign row,
so caps hold with any number of writers."""

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import DateField, DecimalField, F, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Workspace
from campaigns.errors import CampaignErrorCode
from campaigns.models import MONEY, Campaign, LedgerEntry, Target, daily_above_total
from core.errors import CommonErrorCode
from core.time import local_day

Status = Campaign.Status
CENT = Decimal("0.01")


def _money(value: Any, field: str, *, positive: bool) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (ArithmeticError, ValueError, TypeError):
        raise ValidationError(
            {field: ValidationError(gettext("Expected a decimal amount."), code=CommonErrorCode.INVALID)}
        ) from None
    if not amount.is_finite() or amount.quantize(CENT) != amount or abs(amount) >= Decimal(10) ** 12:
        raise ValidationError(
            {
                field: ValidationError(
                    gettext("Expected an amount with at most 2 decimals."), code=CommonErrorCode.INVALID
                )
            }
        )
    if amount < 0 or (positive and amount == 0):
        raise ValidationError(
            {field: ValidationError(gettext("Expected a positive amount."), code=CommonErrorCode.MIN_VALUE)}
        )
    return amount


def _spent_on(campaign: Campaign, day: date) -> Decimal:
    if getattr(campaign, "spent_today_day", None) == day:  # annotated by `with_spent_today`
        return getattr(campaign, "spent_today")  # noqa: B009  (an annotation the model does not declare)
    total = LedgerEntry.objects.filter(campaign=campaign, kind=LedgerEntry.Kind.SPEND, day=day).aggregate(
        s=Sum("amount")
    )["s"]
    return total or Decimal(0)


def with_spent_today(*, campaigns: QuerySet[Campaign], workspace: Workspace, now: datetime | None = None):
    """Campaigns of one workspace with today's spend annotated, for pacing over a list in one query."""
    day = local_day(workspace, now or timezone.now())
    per_campaign = (
        LedgerEntry.objects.filter(campaign=OuterRef("pk"), kind=LedgerEntry.Kind.SPEND, day=day)
        .values("campaign")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return campaigns.annotate(
        spent_today=Coalesce(Subquery(per_campaign), Value(Decimal(0)), output_field=DecimalField(**MONEY)),
        spent_today_day=Value(day, output_field=DateField()),
    )


@dataclass(frozen=True)
class SpendResult:
    entry: LedgerEntry
    created: bool


def spend_record(
    *,
    campaign: Campaign,
    amount: Any,
    idempotency_key: str,
    occurred_at: datetime | None = None,
    target: Target | None = None,
    currency: str | None = None,
    source: str = "",
    author=None,
    channel: str = "",
    day: date | None = None,
    settling: bool = False,
    billed: bool = False,
) -> SpendResult:
    """Add spend to the ledger, never past a cap; the same key again returns the first entry.

    `settling`: spend reported after the fact by a channel, which a paused or completed
    campaign still accepts for the days it ran (a cancelled one accepts nothing).
    `billed`: spend an exchange already billed (programmatic impressions): it happened, so it is
    recorded whatever the campaign's state and caps; the bidder stops bidding at the caps, and
    what passes them is at most the bids in flight when they were reached.
    """
    amount = _money(amount, "amount", positive=True)
    if not idempotency_key or len(idempotency_key) > 128:
        raise ValidationError(
            {
                "idempotency_key": ValidationError(
                    gettext("Give a key of 1 to 128 characters."), code=CommonErrorCode.INVALID
                )
            }
        )
    if target is not None and target.campaign_id != campaign.pk:
        raise ValidationError(
            {
                "target": ValidationError(
                    gettext("This target belongs to another campaign."), code=CommonErrorCode.INVALID
                )
            }
        )
    occurred_at = occurred_at or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().select_related("workspace").get(pk=campaign.pk)
        existing = LedgerEntry.objects.filter(campaign=locked, idempotency_key=idempotency_key).first()
        if existing is not None:
            if (
                existing.kind != LedgerEntry.Kind.SPEND
                or existing.amount != amount
                or existing.target_id != (target.pk if target else None)
            ):
                raise ValidationError(
                    {
                        "idempotency_key": ValidationError(
                            gettext("This key was used for a different entry."),
                            code=CampaignErrorCode.IDEMPOTENCY_CONFLICT,
                        )
                    }
                )
            return SpendResult(existing, created=False)
        if currency and currency != locked.currency:
            raise ValidationError(
                {
                    "currency": ValidationError(
                        gettext("The campaign spends in %(currency)s.") % {"currency": locked.currency},
                        code=CampaignErrorCode.CURRENCY_MISMATCH,
                    )
                }
            )
        open_statuses = (Status.ACTIVE, Status.PAUSED, Status.COMPLETED) if settling else (Status.ACTIVE,)
        if not billed and locked.status not in open_statuses:
            raise ValidationError(
                {
                    "non_field_errors": ValidationError(
                        gettext("A %(status)s campaign accepts no spend.") % {"status": locked.status},
                        code=CampaignErrorCode.NOT_ACTIVE,
                    )
                }
            )
        day = day or local_day(locked.workspace, occurred_at)
        if not billed and locked.budget_total is not None and locked.spent + amount > locked.budget_total:
            raise ValidationError(
                {
                    "amount": ValidationError(
                        gettext("Over the total budget: %(value)s %(currency)s left.")
                        % {"value": locked.budget_total - locked.spent, "currency": locked.currency},
                        code=CampaignErrorCode.BUDGET_EXCEEDED,
                    )
                }
            )
        if not billed and locked.budget_daily is not None:
            today = _spent_on(locked, day)
            if today + amount > locked.budget_daily:
                raise ValidationError(
                    {
                        "amount": ValidationError(
                            gettext("Over the daily budget of %(day)s: %(value)s %(currency)s left.")
                            % {"day": day, "value": locked.budget_daily - today, "currency": locked.currency},
                            code=CampaignErrorCode.DAILY_BUDGET_EXCEEDED,
                        )
                    }
                )
        entry = LedgerEntry.objects.create(
            workspace_id=locked.workspace_id,
            campaign=locked,
            kind=LedgerEntry.Kind.SPEND,
            amount=amount,
            currency=locked.currency,
            target=target,
            channel=channel,
            day=day,
            occurred_at=occurred_at,
            idempotency_key=idempotency_key,
            source=source,
            author=author,
        )
        Campaign.objects.filter(pk=locked.pk).update(spent=F("spent") + amount)
    return SpendResult(entry, created=True)


def spend_correct(
    *,
    campaign: Campaign,
    amount: Decimal,
    idempotency_key: str,
    day: date,
    target: Target | None = None,
    channel: str = "",
    source: str = "",
    reason: str = "",
) -> SpendResult:
    """A negative spend entry: a channel restated a day's spend downwards. Counts once per key."""
    if amount >= 0:
        raise ValueError("A correction lowers the spend.")
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        existing = LedgerEntry.objects.filter(campaign=locked, idempotency_key=idempotency_key).first()
        if existing is not None:
            return SpendResult(existing, created=False)
        entry = LedgerEntry.objects.create(
            workspace_id=locked.workspace_id,
            campaign=locked,
            kind=LedgerEntry.Kind.SPEND,
            amount=amount,
            currency=locked.currency,
            target=target,
            channel=channel,
            day=day,
            occurred_at=timezone.now(),
            idempotency_key=idempotency_key,
            source=source,
            reason=reason,
        )
        Campaign.objects.filter(pk=locked.pk).update(spent=F("spent") + amount)
    return SpendResult(entry, created=True)


def budget_change(
    *, campaign: Campaign, actor, reason: str, total: Any = None, daily: Any = None, source: str = "api"
) -> Campaign:
    """Set new caps; each change is a ledger entry with its author and reason."""
    if not (reason or "").strip():
        raise ValidationError(
            {"reason": ValidationError(gettext("Say why the budget changes."), code=CommonErrorCode.REQUIRED)}
        )
    changes = {}
    if total is not None:
        changes[LedgerEntry.Kind.BUDGET_TOTAL] = _money(total, "total", positive=False)
    if daily is not None:
        changes[LedgerEntry.Kind.BUDGET_DAILY] = _money(daily, "daily", positive=False)
    if not changes:
        raise ValidationError(
            {
                "non_field_errors": ValidationError(
                    gettext("Give a new total or daily budget."), code=CommonErrorCode.REQUIRED
                )
            }
        )
    now = timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().select_related("workspace").get(pk=campaign.pk)
        if locked.is_final:
            raise ValidationError(
                {
                    "non_field_errors": ValidationError(
                        gettext("A %(status)s campaign's budget is closed.") % {"status": locked.status},
                        code=CampaignErrorCode.FINAL,
                    )
                }
            )
        new_total = changes.get(LedgerEntry.Kind.BUDGET_TOTAL)
        if new_total is not None and new_total < locked.spent:
            raise ValidationError(
                {
                    "total": ValidationError(
                        gettext("Already %(spent)s %(currency)s spent.")
                        % {"spent": locked.spent, "currency": locked.currency},
                        code=CampaignErrorCode.BELOW_SPENT,
                    )
                }
            )
        new_daily = changes.get(LedgerEntry.Kind.BUDGET_DAILY)
        daily_above_total(
            total=locked.budget_total if new_total is None else new_total,
            daily=locked.budget_daily if new_daily is None else new_daily,
            field="daily" if new_daily is not None else "total",
        )
        for kind, value in changes.items():
            field = "budget_total" if kind == LedgerEntry.Kind.BUDGET_TOTAL else "budget_daily"
            old = getattr(locked, field)
            LedgerEntry.objects.create(
                workspace_id=locked.workspace_id,
                campaign=locked,
                kind=kind,
                amount=value - (old or Decimal(0)),
                balance=value,
                currency=locked.currency,
                day=local_day(locked.workspace, now),
                occurred_at=now,
                idempotency_key=f"budget-{uuid.uuid4()}",
                source=source,
                reason=reason,
                author=actor,
            )
            setattr(locked, field, value)
        locked.save(update_fields=["budget_total", "budget_daily", "updated_at"])
    return locked


def spend_planned_today(*, campaign: Campaign, now: datetime | None = None) -> Decimal | None:
    """What pacing plans for the whole of today, on every channel: None when nothing caps it, 0
    before the start and once it ended.

    Even: the budget left at the start of the day spread over the days left (today included),
    within the daily cap. As fast as possible: the daily cap, within what the total had left at
    the start of the day.
    """
    if campaign.is_final:
        return Decimal(0).quantize(CENT)
    now = now or timezone.now()
    if now < campaign.starts_at:
        return Decimal(0).quantize(CENT)  # nothing may be spent before the campaign starts
    today = local_day(campaign.workspace, now)
    spent_today = _spent_on(campaign, today)
    limits = []
    if campaign.budget_daily is not None:
        limits.append(campaign.budget_daily)
    if campaign.budget_total is not None:
        at_day_start = campaign.budget_total - campaign.spent + spent_today
        limits.append(at_day_start)
        if campaign.pacing == Campaign.Pacing.EVEN:
            last_day = local_day(campaign.workspace, campaign.ends_at)
            days_left = max((last_day - today).days + 1, 1)
            limits.append((at_day_start / days_left).quantize(CENT))
    if not limits:
        return None
    return max(min(limits), Decimal(0)).quantize(CENT)


def spend_allowed_today(*, campaign: Campaign, now: datetime | None = None) -> Decimal | None:
    """What pacing still allows today (spend_planned_today less today's spend): None when nothing
    caps it, 0 before the start and once it ended."""
    now = now or timezone.now()
    planned = spend_planned_today(campaign=campaign, now=now)
    if planned is None:
        return None
    spent_today = _spent_on(campaign, local_day(campaign.workspace, now))
    return max(planned - spent_today, Decimal(0)).quantize(CENT)
