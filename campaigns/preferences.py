"""Channel preference: which channel each person responds to best, from their timeline.

For every person and channel a campaign can deliver on, over a window (180 days by default):
deliveries received (sent touches), responses (opens and clicks on that channel, and
deliveries followed by a purchase within a week), a smoothed response rate
(responses + 1) / (deliveries + 2), so that one lucky open does not outrank a steady history,
and the channel's rank for the person (1: preferred). One INSERT ... SELECT replaces the
workspace's rows; nothing loops over people.

It is a rule criterion (`{"preferred_channel": "sms"}`) and a campaign option
(`channel_choice = "preferred"`: each person gets one delivery, on the best-ranked channel of
the campaign they consent to).
"""

from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, DateTimeField, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from accounts.models import Workspace
from campaigns.models import CampaignChannel, ChannelPreference, Touch
from core.sql import InRows
from core.statistics import table_analyze
from customers.models import Event, EventType, Order
from segments.criteria import Criterion, IndexDimension

WINDOW = timedelta(days=180)
PURCHASE_WITHIN = timedelta(days=7)
# Events that answer a delivery, on the channel they happen on.
RESPONSES = (EventType.EMAIL_OPEN, EventType.EMAIL_CLICK, EventType.SMS_CLICK, EventType.PUSH_OPEN, EventType.AD_CLICK)


def _sql(queryset: QuerySet) -> tuple[str, tuple]:
    sql, params = queryset.query.sql_with_params()
    return sql, tuple(params)


def channel_preferences_compute(
    *, workspace: Workspace, now: datetime | None = None, window: timedelta = WINDOW
) -> int:
    """Replace the workspace's channel preferences; returns the rows written."""
    now = now or timezone.now()
    since = now - window
    channels = list(CampaignChannel.values)
    sent = Touch.objects.filter(
        workspace_id=workspace.pk, status=Touch.Status.SENT, sent_at__gte=since, sent_at__lte=now
    )
    touches = sent.order_by().values("profile_id", "channel").annotate(n=Count("pk"))
    opens = (
        Event.objects.filter(
            workspace_id=workspace.pk,
            type__in=RESPONSES,
            channel__in=channels,
            occurred_at__gte=since,
            occurred_at__lte=now,
        )
        .order_by()
        .values("profile_id", "channel")
        .annotate(n=Count("pk"))
    )
    bought = Order.objects.filter(
        profile_id=OuterRef("profile_id"),
        status=Order.Status.COMPLETED,
        ordered_at__gte=OuterRef("sent_at"),
        ordered_at__lte=ExpressionWrapper(OuterRef("sent_at") + PURCHASE_WITHIN, output_field=DateTimeField()),
    )
    buys = sent.filter(Exists(bought)).order_by().values("profile_id", "channel").annotate(n=Count("pk"))
    parts = [_sql(touches), _sql(opens), _sql(buys)]
    qn = connection.ops.quote_name
    table = qn(ChannelPreference._meta.db_table)
    sql = f"""
        INSERT INTO {table} (workspace_id, profile_id, channel, touches, responses, score, {qn("rank")}, computed_at)
        SELECT %s, profile_id, channel, touches, responses, (responses + 1.0) / (touches + 2.0),
               ROW_NUMBER() OVER (
                   PARTITION BY profile_id ORDER BY (responses + 1.0) / (touches + 2.0) DESC, responses DESC, channel
               ),
               %s
        FROM (
            SELECT profile_id, channel, SUM(touches) AS touches, SUM(responses) AS responses
            FROM (
                SELECT t.profile_id, t.channel, t.n AS touches, 0 AS responses FROM ({parts[0][0]}) t
                UNION ALL SELECT o.profile_id, o.channel, 0, o.n FROM ({parts[1][0]}) o
                UNION ALL SELECT b.profile_id, b.channel, 0, b.n FROM ({parts[2][0]}) b
            ) everything
            GROUP BY profile_id, channel
        ) summed
    """
    params = (workspace.pk, now, *parts[0][1], *parts[1][1], *parts[2][1])
    with transaction.atomic(), connection.cursor() as cursor:
        ChannelPreference.objects.filter(workspace_id=workspace.pk).delete()
        cursor.execute(sql, params)
        written = cursor.rowcount
    table_analyze(table=ChannelPreference._meta.db_table)
    return written


def preferred_channels(*, profile_ids: list[int]) -> dict[int, str]:
    """Each of these people's preferred channel, where one was computed."""
    return dict(
        ChannelPreference.objects.filter(profile_id__in=profile_ids, rank=1).values_list("profile_id", "channel")
    )


def _rank(channel: str, default: int):
    return Coalesce(
        Subquery(ChannelPreference.objects.filter(profile_id=OuterRef("pk"), channel=channel).values("rank")[:1]),
        Value(default),
    )


def routed_to(*, people: QuerySet, channel: str, channels: list[str], reachable) -> QuerySet:
    """Of `people`, those whose delivery goes to `channel` under "preferred channel": among the
    campaign's `channels` they may be reached on (`reachable(channel)`: a queryset of profiles),
    `channel` ranks best for them (the campaign's order breaks ties and stands for people without
    a computed preference)."""
    order = {c: 1000 + i for i, c in enumerate(channels)}
    people = people.annotate(_mine=_rank(channel, order[channel]))
    for other in channels:
        if other == channel:
            continue
        name = f"_rank_{other}"
        people = people.annotate(**{name: _rank(other, order[other])}).exclude(
            Q(InRows(reachable(other).values("pk"))) & Q(**{f"{name}__lt": F("_mine")})
        )
    return people


# --- the rule criterion ------------------------------------------------------------------------


def _channels_of(spec: Any) -> list[str] | None:
    """The channels a rule names: one, or a list of distinct ones; None when it names none validly."""
    values = spec if isinstance(spec, list) else [spec]
    if not values or not all(isinstance(v, str) and v in CampaignChannel.values for v in values):
        return None
    if len(set(values)) != len(values):
        return None
    return values


def preferred_channel_validate(spec: Any, path: str, workspace_id: int | None, errors: list[str]) -> None:
    if _channels_of(spec) is None:
        errors.append(
            gettext("%(path)s: expected a channel or a list of distinct channels among %(channels)s.")
            % {"path": path, "channels": ", ".join(CampaignChannel.values)}
        )


def preferred_channel_compile(spec: Any, ctx) -> Any:
    return ChannelPreference.objects.filter(
        workspace_id=ctx.workspace_id, rank=1, channel__in=_channels_of(spec) or []
    ).values("profile_id")


def preferred_channel_choices(workspace_id: int) -> list[tuple[str, dict]]:
    return [(str(label), {"preferred_channel": value}) for value, label in CampaignChannel.choices]


def channel_preferences_due(*, now: datetime | None = None) -> int:
    """Every workspace with deliveries in the window: its preferences computed again (daily)."""
    now = now or timezone.now()
    ids = Touch.objects.filter(sent_at__gte=now - WINDOW).values_list("workspace_id", flat=True).distinct().order_by()
    from campaigns.tasks import channel_preferences_compute_task

    workspace_ids = sorted(set(ids))
    for workspace_id in workspace_ids:
        channel_preferences_compute_task.delay(workspace_id=workspace_id)
    return len(workspace_ids)


def preferred_channel_counts(profiles, workspace_id: int) -> dict[str, int]:
    rows = (
        ChannelPreference.objects.filter(workspace_id=workspace_id, rank=1, profile_id__in=profiles.values("pk"))
        .values("channel")
        .annotate(n=Count("pk"))
    )
    return {row["channel"]: row["n"] for row in rows}


CRITERION = Criterion(
    "preferred_channel",
    preferred_channel_validate,
    preferred_channel_compile,
    facets=(("event", "email_open"), ("event", "email_click"), ("event", "sms_click")),
    dimensions=(
        IndexDimension(
            name="preferred_channel",
            label="Preferred channel",
            values=tuple((str(value), str(label)) for value, label in CampaignChannel.choices),
            counts=preferred_channel_counts,
            rule=lambda value: {"preferred_channel": value},
        ),
    ),
    label=gettext_lazy("Preferred channel"),
    choices=preferred_channel_choices,
    schema={
        "description": "People whose preferred channel is this one (or one of these).",
        "anyOf": [
            {"type": "string", "enum": list(CampaignChannel.values)},
            {
                "type": "array",
                "items": {"type": "string", "enum": list(CampaignChannel.values)},
                "minItems": 1,
                "maxItems": len(CampaignChannel.values),
                "uniqueItems": True,
            },
        ],
    },
)
