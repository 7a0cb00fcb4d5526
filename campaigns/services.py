"""Campaign services: creation and edits, the lifecycle's one transition service, budgets and spend.

Every state change goes through `campaign_transition`; every spend and budget change through
the ledger, under a lock on the campaign row, so caps hold with any number of writers.
"""

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

from accounts.models import Workspace
from campaigns.errors import CampaignErrorCode
from campaigns.models import MONEY, Campaign, LedgerEntry, PendingSend, Target, Touch, Transition
from campaigns.rendering import unknown_tokens
from core.errors import CommonErrorCode
from core.time import local_day
from segments.rules import validate_definition

Status = Campaign.Status

# The lifecycle: draft -> scheduled -> active <-> paused -> completed; cancelled from any non-final state.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.DRAFT: frozenset({Status.SCHEDULED, Status.CANCELLED}),
    Status.SCHEDULED: frozenset({Status.ACTIVE, Status.CANCELLED}),
    Status.ACTIVE: frozenset({Status.PAUSED, Status.COMPLETED, Status.CANCELLED}),
    Status.PAUSED: frozenset({Status.ACTIVE, Status.COMPLETED, Status.CANCELLED}),
    Status.COMPLETED: frozenset(),
    Status.CANCELLED: frozenset(),
}
GEOGRAPHIC_FIELDS = {"city", "postal_code", "region", "country"}
TEMPLATE_FIELDS = ("subject_template", "body_template")
CENT = Decimal("0.01")


# --- campaigns and targets ------------------------------------------------------------


def _check_channels(channels: Any) -> None:
    from campaigns.models import CampaignChannel

    if not isinstance(channels, list) or not channels:
        raise ValidationError(
            {"channels": ValidationError("Give at least one channel.", code=CommonErrorCode.REQUIRED)}
        )
    unknown = [c for c in channels if c not in CampaignChannel.values]
    if unknown or len(set(channels)) != len(channels):
        raise ValidationError(
            {
                "channels": ValidationError(
                    f"Unknown or repeated channels {unknown or channels}; choose among {CampaignChannel.values}.",
                    code=CommonErrorCode.INVALID_CHOICE,
                )
            }
        )


def target_check(target: Target) -> None:
    """A target's own rules: its audience, mode, area and trigger (field errors by name)."""
    errors: dict[str, ValidationError] = {}
    campaign = target.campaign
    if target.segment_id and target.segment.workspace_id != campaign.workspace_id:
        errors["segment"] = ValidationError(
            "This segment belongs to another workspace.", code=CommonErrorCode.DOES_NOT_EXIST
        )
    if not target.segment_id and not target.trigger_event:
        errors["segment"] = ValidationError("Choose a segment (or a trigger event).", code=CommonErrorCode.REQUIRED)
    if target.mode == Target.Mode.FINE and target.min_probability is None:
        errors["min_probability"] = ValidationError(
            "A fine target needs a minimum probability.", code=CommonErrorCode.REQUIRED
        )
    if target.restriction is not None:
        try:
            validate_definition(target.restriction, attribute_types={})
            _only_geographic(target.restriction, "restriction")
        except ValidationError as exc:
            errors["restriction"] = ValidationError(exc.messages, code=CommonErrorCode.INVALID)
    if target.trigger_event:
        from customers.models import EventType

        if target.trigger_event not in EventType.values:
            errors["trigger_event"] = ValidationError(
                f"Unknown event type {target.trigger_event!r}.", code=CommonErrorCode.INVALID
            )
        if target.trigger_delay is None or target.trigger_delay.total_seconds() < 0:
            errors["trigger_delay"] = ValidationError(
                "Give the delay after the event (0 or more).", code=CommonErrorCode.REQUIRED
            )
        if not isinstance(target.trigger_properties, dict) or any(
            not isinstance(v, str | int | float | bool) for v in target.trigger_properties.values()
        ):
            errors["trigger_properties"] = ValidationError(
                "An object of property: value pairs (strings, numbers or booleans).", code=CommonErrorCode.INVALID
            )
    for name in TEMPLATE_FIELDS:
        unknown = unknown_tokens(getattr(target, name))
        if unknown:
            errors[name] = ValidationError(
                f"Unknown tokens: {', '.join(sorted(unknown))}.", code=CommonErrorCode.INVALID
            )
    if errors:
        raise ValidationError(errors)


def _only_geographic(node: Any, path: str) -> None:
    for key in ("all", "any"):
        if key in node:
            for i, child in enumerate(node[key]):
                _only_geographic(child, f"{path}.{key}[{i}]")
            return
    if "not" in node:
        _only_geographic(node["not"], f"{path}.not")
        return
    if "geo" in node or node.get("field") in GEOGRAPHIC_FIELDS:
        return
    raise ValidationError(f"{path}: an area uses geographic criteria only (city, postal code, region, country, geo).")


@transaction.atomic
def campaign_create(*, workspace: Workspace, owner=None, targets: list[dict] | None = None, **fields) -> Campaign:
    _check_channels(fields.get("channels"))
    fields.setdefault("currency", workspace.currency)
    campaign = Campaign(workspace=workspace, owner=owner, **fields)
    campaign.full_clean()
    campaign.save()
    for spec in targets or []:
        target_add(campaign=campaign, **spec)
    return campaign


@transaction.atomic
def campaign_update(*, campaign: Campaign, targets: list[dict] | None = None, **fields) -> Campaign:
    """Edit a campaign that has not started; once it runs, use pause, cancel and budget instead."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status not in (Status.DRAFT, Status.SCHEDULED):
        raise ValidationError(
            {
                "status": ValidationError(
                    f"A {campaign.status} campaign cannot be edited.", code=CampaignErrorCode.NOT_EDITABLE
                )
            }
        )
    for money in ("budget_total", "budget_daily"):
        if money in fields and fields[money] != getattr(campaign, money) and campaign.status != Status.DRAFT:
            raise ValidationError(
                {money: ValidationError("Change the budget of a scheduled campaign through the budget action.")}
            )
    if "channels" in fields:
        _check_channels(fields["channels"])
    for name, value in fields.items():
        setattr(campaign, name, value)
    campaign.full_clean()
    campaign.save()
    if targets is not None:
        campaign.targets.all().delete()
        for spec in targets:
            target_add(campaign=campaign, **spec)
    return campaign


def target_add(*, campaign: Campaign, **fields) -> Target:
    target = Target(campaign=campaign, **fields)
    target.full_clean(exclude=["campaign"])
    target_check(target)
    target.save()
    return target


def connector_check(*, kind: str, url: str, secret: str) -> None:
    """A webhook needs its receiver's URL and a secret long enough to sign with."""
    from campaigns.models import Connector

    if kind != Connector.Kind.WEBHOOK:
        return
    errors = {}
    if not url:
        errors["url"] = ValidationError("A webhook needs the receiver's URL.", code=CommonErrorCode.REQUIRED)
    if len(secret or "") < 16:
        errors["secret"] = ValidationError(
            "A webhook needs a secret of 16 characters or more.", code=CampaignErrorCode.TOO_SHORT
        )
    if errors:
        raise ValidationError(errors)


def campaign_ready_check(campaign: Campaign, now: datetime) -> None:
    """What scheduling needs: targets, a future end, budget shares within 100 %, usable targets."""
    errors: dict[str, list[ValidationError]] = {}
    targets = list(campaign.targets.select_related("segment"))
    if not targets:
        errors.setdefault("targets", []).append(
            ValidationError("Add at least one target.", code=CommonErrorCode.REQUIRED)
        )
    if campaign.ends_at <= now:
        errors.setdefault("ends_at", []).append(
            ValidationError("The campaign ends in the past.", code=CampaignErrorCode.ENDED)
        )
    shares = sum((t.budget_share or Decimal(0)) for t in targets)
    if shares > 100:
        errors.setdefault("targets", []).append(
            ValidationError(
                f"The budget shares add up to {shares} %, more than 100 %.", code=CampaignErrorCode.OVER_100
            )
        )
    for target in targets:
        if target.mode == Target.Mode.FINE:
            errors.setdefault("targets", []).append(
                ValidationError(
                    f"Target {target}: no membership probabilities are computed for its segment yet; use macro mode.",
                    code=CampaignErrorCode.NO_SCORES,
                )
            )
    if errors:
        raise ValidationError(errors)


# --- lifecycle ---------------------------------------------------------------------------


def campaign_transition(
    *, campaign: Campaign, to: str, actor=None, source: str = "api", reason: str = "", now: datetime | None = None
) -> Campaign:
    """The one way a campaign changes state: checked, logged, and effective at once."""
    from campaigns.tasks import campaign_activate_task

    now = now or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if to not in TRANSITIONS[locked.status]:
            raise ValidationError(
                {
                    "status": ValidationError(
                        f"A {locked.status} campaign cannot become {to}.", code=CampaignErrorCode.ILLEGAL_TRANSITION
                    )
                }
            )
        if to == Status.CANCELLED and not reason.strip():
            raise ValidationError(
                {"reason": ValidationError("Say why the campaign is cancelled.", code=CommonErrorCode.REQUIRED)}
            )
        if to == Status.SCHEDULED:
            campaign_ready_check(locked, now)
        previous = locked.status
        locked.status = to
        if to == Status.ACTIVE and locked.activated_at is None:
            locked.activated_at = now
        locked.save(update_fields=["status", "activated_at", "updated_at"])
        Transition.objects.create(
            campaign=locked, from_status=previous, to_status=to, actor=actor, source=source, reason=reason, at=now
        )
        if to in (Status.CANCELLED, Status.COMPLETED):
            # Nothing more goes out: deliveries not yet handed off and triggered sends waiting.
            Touch.objects.filter(campaign=locked, status=Touch.Status.PENDING).update(status=Touch.Status.CANCELLED)
            PendingSend.objects.filter(target__campaign=locked, status=PendingSend.Status.WAITING).update(
                status=PendingSend.Status.CANCELLED, reason=f"campaign {to}"
            )
        if to == Status.ACTIVE:
            campaign_activate_task.delay_on_commit(campaign_id=locked.pk)
    return locked


def campaign_activate(*, campaign: Campaign, actor=None, source: str = "api", reason: str = "") -> Campaign:
    """Schedule a draft; it starts at once when its start time has come."""
    now = timezone.now()
    campaign = campaign_transition(
        campaign=campaign, to=Status.SCHEDULED, actor=actor, source=source, reason=reason, now=now
    )
    if campaign.starts_at <= now:
        campaign = campaign_transition(
            campaign=campaign, to=Status.ACTIVE, actor=actor, source=source, reason=reason or "start time reached"
        )
    return campaign


def campaign_resume(*, campaign: Campaign, actor=None, source: str = "api", reason: str = "") -> Campaign:
    if campaign.status == Status.PAUSED and campaign.ends_at <= timezone.now():
        return campaign_transition(
            campaign=campaign, to=Status.COMPLETED, actor=actor, source=source, reason="ended while paused"
        )
    return campaign_transition(campaign=campaign, to=Status.ACTIVE, actor=actor, source=source, reason=reason)


def campaigns_tick(*, now: datetime | None = None) -> dict[str, int]:
    """Beat, every minute: start the scheduled campaigns whose time has come, end those past their end."""
    now = now or timezone.now()
    started = ended = 0
    for campaign in Campaign.objects.filter(status=Status.SCHEDULED, starts_at__lte=now, ends_at__gt=now):
        campaign_transition(campaign=campaign, to=Status.ACTIVE, source="schedule", reason="start time", now=now)
        started += 1
    for campaign in Campaign.objects.filter(
        status__in=[Status.SCHEDULED, Status.ACTIVE, Status.PAUSED], ends_at__lte=now
    ):
        to = Status.CANCELLED if campaign.status == Status.SCHEDULED else Status.COMPLETED
        campaign_transition(campaign=campaign, to=to, source="schedule", reason="end time", now=now)
        ended += 1
    # A running campaign reaches the newcomers of each refreshed audience.
    from campaigns.tasks import campaign_activate_task

    refreshed = sorted(
        set(
            Target.objects.filter(campaign__status=Status.ACTIVE, trigger_event="", segment__isnull=False)
            .filter(segment__audience__current_version__gt=F("activated_version"))
            .values_list("campaign_id", flat=True)
        )
    )
    for campaign_id in refreshed:
        campaign_activate_task.delay(campaign_id=campaign_id)
    return {"started": started, "ended": ended, "refreshed": len(refreshed)}


# --- budgets and spend -----------------------------------------------------------------------


def _money(value: Any, field: str, *, positive: bool) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (ArithmeticError, ValueError, TypeError):
        raise ValidationError(
            {field: ValidationError("Expected a decimal amount.", code=CommonErrorCode.INVALID)}
        ) from None
    if not amount.is_finite() or amount.quantize(CENT) != amount or abs(amount) >= Decimal(10) ** 12:
        raise ValidationError(
            {field: ValidationError("Expected an amount with at most 2 decimals.", code=CommonErrorCode.INVALID)}
        )
    if amount < 0 or (positive and amount == 0):
        raise ValidationError({field: ValidationError("Expected a positive amount.", code=CommonErrorCode.MIN_VALUE)})
    return amount


def _spent_on(campaign: Campaign, day: date) -> Decimal:
    if getattr(campaign, "spent_today_day", None) == day:  # annotated by `with_spent_today`
        return campaign.spent_today
    total = LedgerEntry.objects.filter(campaign=campaign, kind=LedgerEntry.Kind.SPEND, day=day).aggregate(
        s=Sum("amount")
    )["s"]
    return total or Decimal(0)


def with_spent_today(campaigns: QuerySet[Campaign], workspace: Workspace, now: datetime | None = None):
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
) -> SpendResult:
    """Add spend to the ledger, never past a cap; the same key again returns the first entry.

    `settling`: spend reported after the fact by a channel, which a paused or completed
    campaign still accepts for the days it ran (a cancelled one accepts nothing).
    """
    amount = _money(amount, "amount", positive=True)
    if not idempotency_key or len(idempotency_key) > 128:
        raise ValidationError(
            {"idempotency_key": ValidationError("Give a key of 1 to 128 characters.", code=CommonErrorCode.INVALID)}
        )
    if target is not None and target.campaign_id != campaign.pk:
        raise ValidationError(
            {"target": ValidationError("This target belongs to another campaign.", code=CommonErrorCode.INVALID)}
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
                            "This key was used for a different entry.", code=CampaignErrorCode.IDEMPOTENCY_CONFLICT
                        )
                    }
                )
            return SpendResult(existing, created=False)
        if currency and currency != locked.currency:
            raise ValidationError(
                {
                    "currency": ValidationError(
                        f"The campaign spends in {locked.currency}.", code=CampaignErrorCode.CURRENCY_MISMATCH
                    )
                }
            )
        open_statuses = (Status.ACTIVE, Status.PAUSED, Status.COMPLETED) if settling else (Status.ACTIVE,)
        if locked.status not in open_statuses:
            raise ValidationError(
                {
                    "non_field_errors": ValidationError(
                        f"A {locked.status} campaign accepts no spend.", code=CampaignErrorCode.NOT_ACTIVE
                    )
                }
            )
        day = day or local_day(locked.workspace, occurred_at)
        if locked.budget_total is not None and locked.spent + amount > locked.budget_total:
            raise ValidationError(
                {
                    "amount": ValidationError(
                        f"Over the total budget: {locked.budget_total - locked.spent} {locked.currency} left.",
                        code=CampaignErrorCode.BUDGET_EXCEEDED,
                    )
                }
            )
        if locked.budget_daily is not None:
            today = _spent_on(locked, day)
            if today + amount > locked.budget_daily:
                raise ValidationError(
                    {
                        "amount": ValidationError(
                            f"Over the daily budget of {day}: {locked.budget_daily - today} {locked.currency} left.",
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
        raise ValidationError({"reason": ValidationError("Say why the budget changes.", code=CommonErrorCode.REQUIRED)})
    changes = {}
    if total is not None:
        changes[LedgerEntry.Kind.BUDGET_TOTAL] = _money(total, "total", positive=False)
    if daily is not None:
        changes[LedgerEntry.Kind.BUDGET_DAILY] = _money(daily, "daily", positive=False)
    if not changes:
        raise ValidationError(
            {"non_field_errors": ValidationError("Give a new total or daily budget.", code=CommonErrorCode.REQUIRED)}
        )
    now = timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().select_related("workspace").get(pk=campaign.pk)
        if locked.is_final:
            raise ValidationError(
                {
                    "non_field_errors": ValidationError(
                        f"A {locked.status} campaign's budget is closed.", code=CampaignErrorCode.FINAL
                    )
                }
            )
        new_total = changes.get(LedgerEntry.Kind.BUDGET_TOTAL)
        if new_total is not None and new_total < locked.spent:
            raise ValidationError(
                {
                    "total": ValidationError(
                        f"Already {locked.spent} {locked.currency} spent.", code=CampaignErrorCode.BELOW_SPENT
                    )
                }
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


def spend_allowed_today(campaign: Campaign, *, now: datetime | None = None) -> Decimal | None:
    """What pacing allows today: None when nothing caps it.

    Even: the budget left at the start of the day spread over the days left (today included),
    within the daily cap. As fast as possible: the daily cap, within what the total has left.
    """
    if campaign.is_final:
        return Decimal(0)
    now = now or timezone.now()
    today = local_day(campaign.workspace, now)
    spent_today = _spent_on(campaign, today)
    limits = []
    if campaign.budget_daily is not None:
        limits.append(campaign.budget_daily - spent_today)
    if campaign.budget_total is not None:
        left = campaign.budget_total - campaign.spent
        limits.append(left)
        if campaign.pacing == Campaign.Pacing.EVEN:
            last_day = local_day(campaign.workspace, campaign.ends_at)
            days_left = max((last_day - today).days + 1, 1)
            at_day_start = left + spent_today
            limits.append((at_day_start / days_left).quantize(CENT) - spent_today)
    if not limits:
        return None
    return max(min(limits), Decimal(0)).quantize(CENT)
