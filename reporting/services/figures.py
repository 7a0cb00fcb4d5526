"""Delivery figures in: channels and ad platforms report per campaign, target, channel and day;
a replay changes nothing, a restatement replaces the row, and the spend ledger gets the difference once."""

from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from campaigns.models import Campaign, Target
from campaigns.services import spend_correct, spend_record
from core.errors import CommonErrorCode
from core.time import local_day
from reporting.errors import ReportingErrorCode
from reporting.models import DeliveryFigure


def _schedule_days(campaign: Campaign) -> tuple[date, date]:
    return local_day(campaign.workspace, campaign.starts_at), local_day(campaign.workspace, campaign.ends_at)


def figure_check(*, campaign: Campaign, target: Target | None, channel: str, day: date) -> None:
    """A figure belongs to one of the campaign's channels and targets, on a day it ran."""
    errors = {}
    if target is not None and target.campaign_id != campaign.pk:
        errors["target"] = ValidationError(
            gettext("This target belongs to another campaign."), code=CommonErrorCode.INVALID
        )
    if channel not in campaign.channels:
        errors["channel"] = ValidationError(
            gettext("The campaign delivers on %(value)s, not %(channel)s.")
            % {"value": ", ".join(campaign.channels) or "no channel", "channel": channel},
            code=ReportingErrorCode.INVALID_CHANNEL,
        )
    first, last = _schedule_days(campaign)
    today = local_day(campaign.workspace, timezone.now())
    if not first <= day <= last:
        errors["day"] = ValidationError(
            gettext("The campaign runs from %(first)s to %(last)s.") % {"first": first, "last": last},
            code=ReportingErrorCode.OUT_OF_SCHEDULE,
        )
    elif day > today:
        errors["day"] = ValidationError(
            gettext("A day in the future has no figures yet."), code=ReportingErrorCode.FUTURE
        )
    if errors:
        raise ValidationError(errors)


def figure_upsert(
    *,
    campaign: Campaign,
    target: Target | None,
    channel: str,
    day: date,
    source: str = "",
    impressions: int = 0,
    clicks: int = 0,
    conversions: int = 0,
    spend: Decimal = Decimal(0),
    revenue: Decimal = Decimal(0),
) -> tuple[DeliveryFigure, str]:
    """Write one day's figures by natural key; returns the row and created, updated or unchanged.

    Figures are the day's totals as the platform sees them now: a replay changes nothing, a
    restatement replaces the values, and the ledger gets exactly the change of spend, once
    (its idempotency key names the row's revision).
    """
    figure_check(campaign=campaign, target=target, channel=channel, day=day)
    key = {"campaign": campaign, "target": target, "channel": channel, "day": day, "source": source}
    values = {
        "impressions": impressions,
        "clicks": clicks,
        "conversions": conversions,
        "spend": spend,
        "revenue": revenue,
    }
    with transaction.atomic():
        now = timezone.now()
        DeliveryFigure.objects.bulk_create(
            [DeliveryFigure(workspace_id=campaign.workspace_id, revision=0, updated_at=now, **key)],
            ignore_conflicts=True,
        )
        figure = DeliveryFigure.objects.select_for_update().get(**key)
        if figure.revision and all(getattr(figure, name) == value for name, value in values.items()):
            return figure, "unchanged"
        outcome = "created" if figure.revision == 0 else "updated"
        figure.revision += 1
        delta = spend - figure.booked_spend
        ledger_key = f"delivery-{figure.pk}-r{figure.revision}"
        why = f"{source or 'channel'} figures of {day} for {channel}"
        if delta > 0:
            spend_record(
                campaign=campaign,
                amount=delta,
                idempotency_key=ledger_key,
                target=target,
                channel=channel,
                day=day,
                source=f"delivery:{source}" if source else "delivery",
                settling=True,
            )
        elif delta < 0:
            spend_correct(
                campaign=campaign,
                amount=delta,
                idempotency_key=ledger_key,
                day=day,
                target=target,
                channel=channel,
                source=f"delivery:{source}" if source else "delivery",
                reason=f"{why} restated: {figure.booked_spend} -> {spend}",
            )
        for name, value in values.items():
            setattr(figure, name, value)
        figure.booked_spend = spend
        figure.updated_at = now
        figure.save()
    return figure, outcome


class FiguresRejected(Exception):
    """Rows of a batch were refused: `errors` maps each row's index to {field: [{message, code}]}."""

    def __init__(self, errors: dict[str, dict[str, list[dict[str, str]]]]):
        super().__init__(f"{len(errors)} rows refused")
        self.errors = errors


def _error_items(exc: ValidationError) -> dict[str, list[dict[str, Any]]]:
    by_field = exc.error_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.error_list}
    return {
        ("non_field_errors" if name == "__all__" else name): [
            {"message": next(iter(error)), "code": error.code or CommonErrorCode.INVALID} for error in errors
        ]
        for name, errors in by_field.items()
    }


def figures_ingest(*, rows: list[dict]) -> dict[str, Any]:
    """A batch of figures, all or nothing: errors are reported by row, and nothing is written."""
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    errors: dict[str, Any] = {}
    ids = []
    with transaction.atomic():
        for index, row in enumerate(rows):
            try:
                with transaction.atomic():
                    figure, outcome = figure_upsert(**row)
            except ValidationError as exc:
                errors[str(index)] = _error_items(exc)
                continue
            counts[outcome] += 1
            ids.append(figure.pk)
        if errors:
            raise FiguresRejected(errors)
    if counts["created"] or counts["updated"]:
        from reporting.tasks import rollup_task

        workspace_id = rows[0]["campaign"].workspace_id
        rollup_task.delay_on_commit(workspace_id=workspace_id)
    return {**counts, "ids": ids}
