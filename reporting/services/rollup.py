"""The incremental daily roll-up per campaign, target, channel and day, and its schedule."""

from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    Aggregate,
    Count,
    F,
    Q,
    QuerySet,
    Sum,
)
from django.utils import timezone

from accounts.models import Workspace
from campaigns.models import Campaign, LedgerEntry, Touch
from core.sql import rows_delete
from core.time import local_day
from reporting.models import Attribution, DailyRollup, DeliveryFigure, RollupState
from reporting.services.attribution import attribution_run, attribution_settings, merge_ranges, time_ranges

OVERLAP = timedelta(minutes=5)


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
            merge_ranges(into=ranges, other=time_ranges(queryset=spend, field="day"))
            merge_ranges(
                into=ranges,
                other=time_ranges(
                    queryset=DeliveryFigure.objects.filter(workspace=workspace, updated_at__gt=since), field="day"
                ),
            )
            sent = Touch.objects.filter(
                workspace=workspace, sent_day__gte=local_day(workspace, since), sent_at__gt=since
            ).filter(status=Touch.Status.SENT)
            merge_ranges(into=ranges, other=time_ranges(queryset=sent, field="sent_day"))
            merge_ranges(into=ranges, other=attribution["ranges"])
            scope = {campaign_id: (first, last) for campaign_id, (first, last) in ranges.items()}
        rows = 0
        if scope is None or scope:  # an empty scope: nothing changed
            stale = DailyRollup.objects.filter(workspace=workspace)
            if scope:
                stale = stale.filter(_day_scope(scope, "day"))
            rows_delete(stale)
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
