"""Clicks on deliveries, and last-touch attribution of orders within the workspace's windows."""

from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    BigIntegerField,
    Case,
    Exists,
    Max,
    Min,
    OuterRef,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from accounts.models import Workspace
from campaigns.models import Touch
from core.sql import insert_select, rows_delete
from customers.models import Event, EventType, Order
from reporting.models import Attribution, AttributionSettings, Click

CLICK_EVENTS = (EventType.EMAIL_CLICK, EventType.SMS_CLICK, EventType.AD_CLICK, EventType.PUSH_OPEN)


def time_ranges(*, queryset, field: str) -> dict[int, list]:
    """{campaign id: [first, last]} of a datetime or date field over the rows."""
    rows = queryset.order_by().values("campaign_id").annotate(first=Min(field), last=Max(field))
    return {row["campaign_id"]: [row["first"], row["last"]] for row in rows}


def merge_ranges(*, into: dict[int, list], other: dict[int, list]) -> dict[int, list]:
    for campaign_id, (first, last) in other.items():
        if campaign_id in into:
            into[campaign_id] = [min(into[campaign_id][0], first), max(into[campaign_id][1], last)]
        else:
            into[campaign_id] = [first, last]
    return into


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
    """The workspace's windows; the defaults, unsaved, until first changed (a read writes nothing)."""
    return AttributionSettings.objects.filter(workspace=workspace).first() or AttributionSettings(workspace=workspace)


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
    ranges = time_ranges(queryset=old, field="day") if changed_since is not None else {}
    removed = rows_delete(old)

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
        merge_ranges(into=ranges, other=time_ranges(queryset=new, field="day"))
    return {"removed": removed or 0, "attributed": attributed, "ranges": ranges}
