"""Reporting services: delivery figures in, clicks, attribution, and the incremental daily roll-up.

Everything that touches many rows is one SQL statement per step; Python only sees per-campaign
ranges and aggregated keys.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import (
    Aggregate,
    BigIntegerField,
    Case,
    Count,
    Exists,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.models import Workspace
from campaigns.models import Campaign, LedgerEntry, Target, Touch
from campaigns.services import spend_correct, spend_record
from core.errors import CommonErrorCode
from core.sql import insert_select
from core.time import local_day
from customers.models import Event, EventType, Order
from reporting.errors import ReportingErrorCode
from reporting.models import Attribution, AttributionSettings, Click, DailyRollup, DeliveryFigure, RollupState

CLICK_EVENTS = (EventType.EMAIL_CLICK, EventType.SMS_CLICK, EventType.AD_CLICK, EventType.PUSH_OPEN)
FIGURE_FIELDS = ("impressions", "clicks", "conversions", "spend", "revenue")
# Data written up to this long before a run's watermark is read again by the next run, so a
# transaction that committed late is never missed; re-reading is harmless (each run recomputes).
OVERLAP = timedelta(minutes=5)


# --- delivery figures ------------------------------------------------------------------------


def _schedule_days(campaign: Campaign) -> tuple[date, date]:
    return local_day(campaign.workspace, campaign.starts_at), local_day(campaign.workspace, campaign.ends_at)


def figure_check(*, campaign: Campaign, target: Target | None, channel: str, day: date) -> None:
    """A figure belongs to one of the campaign's channels and targets, on a day it ran."""
    errors = {}
    if target is not None and target.campaign_id != campaign.pk:
        errors["target"] = ValidationError("This target belongs to another campaign.", code=CommonErrorCode.INVALID)
    if channel not in campaign.channels:
        errors["channel"] = ValidationError(
            f"The campaign delivers on {', '.join(campaign.channels) or 'no channel'}, not {channel}.",
            code=ReportingErrorCode.INVALID_CHANNEL,
        )
    first, last = _schedule_days(campaign)
    today = local_day(campaign.workspace, timezone.now())
    if not first <= day <= last:
        errors["day"] = ValidationError(
            f"The campaign runs from {first} to {last}.", code=ReportingErrorCode.OUT_OF_SCHEDULE
        )
    elif day > today:
        errors["day"] = ValidationError("A day in the future has no figures yet.", code=ReportingErrorCode.FUTURE)
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


# --- clicks and attribution -------------------------------------------------------------------


def clicks_record(*, workspace_id: int, event_ids: list[int]) -> int:
    """Click events that name a delivery of the same person become clicks, in one statement."""
    touch_text = KeyTextTransform("touch_id", "properties")
    own_touch = Touch.objects.filter(
        pk=OuterRef("touch_ref"), profile_id=OuterRef("profile_id"), workspace_id=workspace_id
    )
    rows = (
        Event.objects.filter(workspace_id=workspace_id, pk__in=event_ids, type__in=CLICK_EVENTS)
        .annotate(touch_text=touch_text)
        .annotate(
            # a CASE, so a touch_id that is not a number never reaches the cast
            touch_ref=Case(
                When(touch_text__regex=r"^[0-9]{1,18}$", then=Cast(touch_text, BigIntegerField())),
                default=None,
                output_field=BigIntegerField(),
            )
        )
        .filter(Exists(own_touch))
        .values_list("workspace_id", "touch_ref", "profile_id", "pk", "occurred_at")
    )
    return insert_select(Click, ["workspace", "touch", "profile", "event", "occurred_at"], rows, ignore_conflicts=True)


def attribution_settings(*, workspace: Workspace) -> AttributionSettings:
    settings_row, _ = AttributionSettings.objects.get_or_create(workspace=workspace)
    return settings_row


def _minus(expression: str, delta: timedelta) -> tuple[str, list]:
    """SQL for `expression - delta` on a datetime column, on PostgreSQL and on SQLite."""
    if connection.vendor == "postgresql":
        return f"({expression} - %s)", [delta]
    # Django's own SQLite function for datetime arithmetic, so the text format matches its storage.
    return f"django_format_dtdelta('-', {expression}, %s)", [delta // timedelta(microseconds=1)]


def attribution_run(*, workspace: Workspace, changed_since: datetime | None = None) -> dict[str, Any]:
    """Credit each completed order to the last touch of the same person within the windows.

    A click counts for `click_window` after it, a delivery (a view) for `view_window`; of the
    touches that qualify, the latest wins (a click on a touch is later than its delivery). With
    `changed_since`, only orders created or changed since then are attributed again.

    Returns the per-campaign ranges of order times whose attribution changed, for the roll-up.
    """
    windows = attribution_settings(workspace=workspace)
    orders = Order.objects.filter(workspace=workspace)
    if changed_since is not None:
        orders = orders.filter(updated_at__gt=changed_since)
    old = Attribution.objects.filter(workspace=workspace)
    if changed_since is not None:
        old = old.filter(order__in=orders.values("pk"))
    ranges = _time_ranges(old, "day") if changed_since is not None else {}
    removed = old._raw_delete(connection.alias)

    click_from, click_params = _minus("o.ordered_at", windows.click_window)
    view_from, view_params = _minus("o.ordered_at", windows.view_window)
    subset, subset_params = ("", [])
    if changed_since is not None:
        subset, subset_params = " AND o.updated_at > %s", [changed_since]
    qn = connection.ops.quote_name
    orders_table, touches, clicks = qn(Order._meta.db_table), qn(Touch._meta.db_table), qn(Click._meta.db_table)
    head = f"""
        INSERT INTO {qn(Attribution._meta.db_table)}
            (workspace_id, order_id, touch_id, campaign_id, target_id, channel, kind,
             touched_at, ordered_at, day, revenue, currency)
    """
    sent, completed = Touch.Status.SENT.value, Order.Status.COMPLETED.value
    if connection.vendor == "postgresql":
        # Per order, the latest view and the latest click of the person inside their windows, each
        # one probe of an index on (profile, time); then the later of the two.
        sql = f"""{head}
            SELECT o.workspace_id, o.id, best.touch_id, t.campaign_id, t.target_id, t.channel, best.kind,
                   best.moment, o.ordered_at, (o.ordered_at AT TIME ZONE %s)::date, o.amount, o.currency
            FROM {orders_table} o
            CROSS JOIN LATERAL (
                SELECT c.touch_id, c.kind, c.moment FROM (
                    (SELECT v.id AS touch_id, 'view' AS kind, v.sent_at AS moment FROM {touches} v
                     WHERE v.profile_id = o.profile_id AND v.workspace_id = %s AND v.status = %s
                       AND v.sent_at <= o.ordered_at AND v.sent_at >= {view_from}
                     ORDER BY v.sent_at DESC, v.id DESC LIMIT 1)
                    UNION ALL
                    (SELECT k.touch_id, 'click' AS kind, k.occurred_at AS moment FROM {clicks} k
                     WHERE k.profile_id = o.profile_id AND k.workspace_id = %s
                       AND k.occurred_at <= o.ordered_at AND k.occurred_at >= {click_from}
                     ORDER BY k.occurred_at DESC, k.touch_id DESC LIMIT 1)
                ) c
                ORDER BY c.moment DESC, c.touch_id DESC LIMIT 1
            ) best
            JOIN {touches} t ON t.id = best.touch_id
            WHERE o.workspace_id = %s AND o.status = %s{subset}
        """
        params = [
            workspace.time_zone,
            workspace.pk,
            sent,
            *view_params,
            workspace.pk,
            *click_params,
            workspace.pk,
            completed,
            *subset_params,
        ]
    else:
        # The same with a window function: every candidate touch, ranked per order.
        sql = f"""{head}
            SELECT x.workspace_id, x.order_id, x.touch_id, t.campaign_id, t.target_id, t.channel, x.kind,
                   x.moment, x.ordered_at, django_datetime_cast_date(x.ordered_at, %s, 'UTC'), x.amount, x.currency
            FROM (
                SELECT o.workspace_id, o.id AS order_id, o.ordered_at, o.amount, o.currency,
                       c.touch_id, c.kind, c.moment,
                       ROW_NUMBER() OVER (PARTITION BY o.id ORDER BY c.moment DESC, c.touch_id DESC) AS rn
                FROM {orders_table} o
                JOIN (
                    SELECT v.profile_id, v.id AS touch_id, 'view' AS kind, v.sent_at AS moment
                    FROM {touches} v
                    WHERE v.workspace_id = %s AND v.status = %s AND v.sent_at IS NOT NULL
                    UNION ALL
                    SELECT k.profile_id, k.touch_id, 'click' AS kind, k.occurred_at AS moment
                    FROM {clicks} k
                    WHERE k.workspace_id = %s
                ) c ON c.profile_id = o.profile_id
                WHERE o.workspace_id = %s AND o.status = %s{subset}
                  AND c.moment <= o.ordered_at
                  AND c.moment >= CASE WHEN c.kind = 'click' THEN {click_from} ELSE {view_from} END
            ) x
            JOIN {touches} t ON t.id = x.touch_id
            WHERE x.rn = 1
        """
        params = [
            workspace.time_zone,
            workspace.pk,
            sent,
            workspace.pk,
            workspace.pk,
            completed,
            *subset_params,
            *click_params,
            *view_params,
        ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        attributed = cursor.rowcount
    if changed_since is not None:
        new = Attribution.objects.filter(workspace=workspace, order__in=orders.values("pk"))
        _merge_ranges(ranges, _time_ranges(new, "day"))
    return {"removed": removed or 0, "attributed": attributed, "ranges": ranges}


# --- roll-up ----------------------------------------------------------------------------------


def _time_ranges(queryset, field: str) -> dict[int, list]:
    """{campaign id: [first, last]} of a datetime or date field over the rows."""
    rows = queryset.order_by().values("campaign_id").annotate(first=Min(field), last=Max(field))
    return {row["campaign_id"]: [row["first"], row["last"]] for row in rows}


def _merge_ranges(into: dict[int, list], other: dict[int, list]) -> dict[int, list]:
    for campaign_id, (first, last) in other.items():
        if campaign_id in into:
            into[campaign_id] = [min(into[campaign_id][0], first), max(into[campaign_id][1], last)]
        else:
            into[campaign_id] = [first, last]
    return into


def rollup_run(*, workspace: Workspace, full: bool = False, reattribute: bool = False) -> dict[str, Any]:
    """Bring the workspace's daily roll-up up to date.

    Incremental by default: only the campaign days that new or changed data falls on are computed
    again (spend in the ledger, delivery figures, deliveries sent, orders attributed). A full run,
    or the first one, recomputes every roll-up row. Orders are attributed again only when they
    changed, unless `reattribute` (or new attribution windows) asks for all of them.
    """
    started = timezone.now()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:  # the day's groups are hashed in memory, not on disk
                cursor.execute("SET LOCAL work_mem = '128MB'")
        state, _ = RollupState.objects.select_for_update().get_or_create(workspace=workspace)
        watermark = state.watermark
        full = full or watermark is None
        since = None if full or watermark is None else watermark - OVERLAP
        windows = attribution_settings(workspace=workspace)
        attributed_with = {"click": str(windows.click_window), "view": str(windows.view_window)}
        everything = reattribute or watermark is None or state.attributed_with != attributed_with
        attribution = attribution_run(
            workspace=workspace, changed_since=None if everything or watermark is None else watermark - OVERLAP
        )
        attributed_at = timezone.now()
        # Every row again on a full run, or when every order was attributed again (any day may move).
        scope = None
        if not (full or everything) and since is not None:
            ranges: dict[int, list] = {}
            spend = LedgerEntry.objects.filter(workspace=workspace, kind=LedgerEntry.Kind.SPEND, recorded_at__gt=since)
            _merge_ranges(ranges, _time_ranges(spend, "day"))
            _merge_ranges(
                ranges, _time_ranges(DeliveryFigure.objects.filter(workspace=workspace, updated_at__gt=since), "day")
            )
            sent = Touch.objects.filter(
                workspace=workspace, sent_day__gte=local_day(workspace, since), sent_at__gt=since
            ).filter(status=Touch.Status.SENT)
            _merge_ranges(ranges, _time_ranges(sent, "sent_day"))
            _merge_ranges(ranges, attribution["ranges"])
            scope = {campaign_id: (first, last) for campaign_id, (first, last) in ranges.items()}
        rows = 0
        if scope is None or scope:  # an empty scope: nothing changed
            stale = DailyRollup.objects.filter(workspace=workspace)
            if scope:
                stale = stale.filter(_day_scope(scope, "day"))
            stale._raw_delete(connection.alias)
            rows = _aggregate(workspace, scope)
        state.watermark = started
        state.attributed_with = attributed_with
        state.last_run_at = timezone.now()
        if full:
            state.last_full_at = state.last_run_at
        state.last_stats = {
            "full": scope is None,
            "campaigns": None if scope is None else len(scope),
            "rows": rows,
            "attributed": attribution["attributed"],
            "reattributed": everything,
            "attribution_seconds": round((attributed_at - started).total_seconds(), 3),
            "seconds": round((state.last_run_at - started).total_seconds(), 3),
        }
        state.save()
    return state.last_stats


def _day_scope(scope: dict[int, tuple[date, date]], field: str) -> Q:
    """Rows of the scope's campaigns on their days; campaigns with the same days share one clause."""
    by_days: dict[tuple[date, date], list[int]] = {}
    for campaign_id, (first, last) in scope.items():
        by_days.setdefault((first, last), []).append(campaign_id)
    q = Q()
    for (first, last), campaign_ids in by_days.items():
        q |= Q(campaign_id__in=campaign_ids, **{f"{field}__gte": first, f"{field}__lte": last})
    return q


ROLLUP_SUMS = (
    "impressions",
    "clicks",
    "spend",
    "reported_conversions",
    "reported_revenue",
    "sends",
    "conversions",
    "revenue",
)


def _aggregate(workspace: Workspace, scope: dict | None) -> int:
    """Write the roll-up rows of the scope (None: the whole workspace) from the four sources.

    One INSERT ... SELECT: each source is grouped by campaign, target, channel and local day (each
    keeps its day in the workspace's time zone: the ledger's and the figures' `day`, the touch's
    `sent_day`, the attribution's `day`), the four are put side by side with UNION ALL and summed
    by key. Returns the number of rows written.
    """
    spend = LedgerEntry.objects.filter(workspace=workspace, kind=LedgerEntry.Kind.SPEND)
    figures = DeliveryFigure.objects.filter(workspace=workspace)
    touches = Touch.objects.filter(workspace=workspace, status=Touch.Status.SENT, sent_day__isnull=False)
    attributed = Attribution.objects.filter(workspace=workspace)
    if scope is not None:
        spend = spend.filter(_day_scope(scope, "day"))
        figures = figures.filter(_day_scope(scope, "day"))
        touches = touches.filter(_day_scope(scope, "sent_day"))
        attributed = attributed.filter(_day_scope(scope, "day"))
    sources: list[tuple[QuerySet, str, dict[str, Aggregate]]] = [
        (spend, "day", {"spend": Sum("amount")}),
        (
            figures,
            "day",
            {
                "impressions": Sum("impressions"),
                "clicks": Sum("clicks"),
                "reported_conversions": Sum("conversions"),
                "reported_revenue": Sum("revenue"),
            },
        ),
        (touches, "sent_day", {"sends": Count("id")}),
        (
            # Revenue counts in the campaign's currency only; an order in another currency still converts.
            attributed,
            "day",
            {"conversions": Count("id"), "revenue": Sum("revenue", filter=Q(currency=F("campaign__currency")))},
        ),
    ]
    qn = connection.ops.quote_name
    parts, params = [], []
    for queryset, day_field, sums in sources:
        sql, sql_params = (
            queryset.order_by().values("campaign_id", "target_id", "channel", day_field).annotate(**sums).query
        ).sql_with_params()
        columns = ", ".join(
            (f"COALESCE(s.{qn(name)}, 0)" if name in sums else "0") + f" AS c{i}" for i, name in enumerate(ROLLUP_SUMS)
        )
        parts.append(
            f"SELECT s.campaign_id AS campaign_id, s.target_id AS target_id, s.channel AS channel, "
            f"s.{qn(day_field)} AS day, {columns} FROM ({sql}) s"
        )
        params.extend(sql_params)
    union = " UNION ALL ".join(parts)
    names = ", ".join(qn(name) for name in ROLLUP_SUMS)
    totals = ", ".join(f"SUM(u.c{i}) AS c{i}" for i in range(len(ROLLUP_SUMS)))
    sql = (
        f"INSERT INTO {qn(DailyRollup._meta.db_table)} (workspace_id, campaign_id, target_id, channel, day, {names}) "
        f"SELECT %s, u.campaign_id, u.target_id, u.channel, u.day, {totals} "
        f"FROM ({union}) u GROUP BY u.campaign_id, u.target_id, u.channel, u.day"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [workspace.pk, *params])
        return cursor.rowcount


def rollups_due(*, now: datetime | None = None) -> int:
    """Beat: the incremental roll-up of each workspace with campaigns that ran lately."""
    from reporting.tasks import rollup_task

    now = now or timezone.now()
    recent = Campaign.objects.running() | Campaign.objects.filter(ends_at__gte=now - timedelta(days=30))
    workspace_ids = sorted(set(recent.values_list("workspace_id", flat=True)))
    for workspace_id in workspace_ids:
        rollup_task.delay(workspace_id=workspace_id)
    return len(workspace_ids)
