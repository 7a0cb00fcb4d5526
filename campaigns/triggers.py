"""Triggered campaigns: an event, then after a delay a message, unless the person bought meanwhile.

As events arrive, a worker writes a pending send for each active triggered target whose event
(and property filter, and segment when there is one) matches. Every minute beat sends those
whose delay has passed: a purchase after the event cancels the send; consent, frequency caps
and the campaign's status are checked when it goes out.
"""

from datetime import datetime

from django.db import transaction
from django.db.models import DateTimeField, Exists, ExpressionWrapper, F, Min, OuterRef, QuerySet, Subquery, Value
from django.utils import timezone

from audiences.models import AudienceMember
from campaigns.activation import eligible
from campaigns.experiments import in_arm
from campaigns.models import Campaign, PendingSend, Target, Touch
from core.sql import insert_select
from customers.models import Event, EventType, Order, Profile
from segments.compiler import compile_definition
from segments.selectors import compile_context


def events_trigger(*, workspace_id: int, event_ids: list[int]) -> int:
    """Pending sends for the new events that match an active triggered target (set-based, replay-safe)."""
    targets = (
        Target.objects.filter(campaign__workspace_id=workspace_id)
        .of_active_campaigns()
        .triggered()
        .select_related("segment__audience")
    )
    now = timezone.now()
    written = 0
    for target in targets:
        events = Event.objects.filter(workspace_id=workspace_id, pk__in=event_ids, type=target.trigger_event)
        for key, value in target.trigger_properties.items():
            events = events.filter(**{f"properties__{key}": value})
        if target.segment is not None:
            audience = target.segment.audience
            events = events.filter(profile_id__in=AudienceMember.objects.current_of(audience).values("profile_id"))
        rows = (
            events.annotate(
                _ws=Value(workspace_id),
                _target=Value(target.pk),
                _due=ExpressionWrapper(F("occurred_at") + Value(target.trigger_delay), output_field=DateTimeField()),
                _status=Value(PendingSend.Status.WAITING),
                _reason=Value(""),
                _created=Value(now),
            )
            .order_by()
            .values_list("_ws", "_target", "profile_id", "pk", "_due", "_status", "_reason", "_created")
        )
        columns = ["workspace", "target", "profile", "event", "due_at", "status", "reason", "created_at"]
        written += insert_select(PendingSend, columns, rows, ignore_conflicts=True)
    return written


def bought_since(*, occurred_at: str = "event__occurred_at"):
    """A completed order or a purchase event by the same person after the triggering event (the
    outer row's `occurred_at` path)."""
    after = {"profile_id": OuterRef("profile_id"), "workspace_id": OuterRef("workspace_id")}
    return Exists(
        Order.objects.filter(**after, status=Order.Status.COMPLETED, ordered_at__gt=OuterRef(occurred_at))
    ) | Exists(Event.objects.filter(**after, type=EventType.PURCHASE, occurred_at__gt=OuterRef(occurred_at)))


def trigger_moments(
    *, target: Target, people: QuerySet[Profile], since: datetime, until: datetime, event_ids: list[int] | None = None
) -> QuerySet[Event]:
    """Of `people`: each one's latest event that triggers `target` (its event, properties, segment
    and area), occurred in (since, until], with no purchase after it; among `event_ids` when given.
    Retargeting on display reads it (programmatic)."""
    workspace = target.campaign.workspace
    events = Event.objects.filter(
        workspace_id=target.workspace_id,
        type=target.trigger_event,
        occurred_at__gt=since,
        occurred_at__lte=until,
        profile_id__in=people.values("pk"),
    )
    if event_ids is not None:
        events = events.filter(pk__in=event_ids)
    for key, value in target.trigger_properties.items():
        events = events.filter(**{f"properties__{key}": value})
    if target.segment is not None:
        events = events.filter(
            profile_id__in=AudienceMember.objects.current_of(target.segment.audience).values("profile_id")
        )
    if target.restriction:
        context = compile_context(workspace=workspace, now=until)
        events = events.filter(
            profile_id__in=Profile.objects.filter(workspace_id=target.workspace_id)
            .filter(compile_definition(target.restriction, context))
            .values("pk")
        )
    latest = events.filter(profile_id=OuterRef("profile_id")).order_by("-occurred_at", "-pk").values("pk")[:1]
    return events.filter(pk=Subquery(latest)).exclude(bought_since(occurred_at="occurred_at"))


def pending_sends_run(*, now: datetime | None = None) -> dict[str, int]:
    """Cancel the sends overtaken by a purchase; send, or skip with the reason, those now due."""
    now = now or timezone.now()
    result = {"cancelled": 0, "sent": 0, "skipped": 0}
    campaigns: set[int] = set()
    with transaction.atomic():
        waiting = PendingSend.objects.filter(status=PendingSend.Status.WAITING)
        result["cancelled"] = PendingSend.objects.filter(pk__in=waiting.filter(bought_since()).values("pk")).update(
            status=PendingSend.Status.CANCELLED, reason="bought after the trigger event"
        )
        due = waiting.filter(due_at__lte=now)
        result["skipped"] += PendingSend.objects.filter(
            pk__in=due.exclude(target__campaign__status=Campaign.Status.ACTIVE).values("pk")
        ).update(status=PendingSend.Status.SKIPPED, reason="campaign not active")
        for target in Target.objects.filter(
            pk__in=due.values("target_id"), campaign__status=Campaign.Status.ACTIVE
        ).select_related("campaign__workspace"):
            campaign = target.campaign
            mine = due.filter(target=target)
            # The campaign's control group (and another variant's share) is never contacted.
            result["skipped"] += PendingSend.objects.filter(
                pk__in=mine.exclude(pk__in=in_arm(rows=mine, target=target, field="profile_id").values("pk")).values(
                    "pk"
                )
            ).update(status=PendingSend.Status.SKIPPED, reason="control group of the campaign's experiment")
            # One send per person and target per run, the oldest event first.
            first = mine.values("profile_id").annotate(first=Min("pk")).values("first")
            for channel in campaign.channels:
                people = eligible(
                    workspace=campaign.workspace,
                    channel=channel,
                    people=Profile.objects.filter(pk__in=mine.values("profile_id")),
                    now=now,
                    restriction=target.restriction,
                )
                rows = (
                    mine.filter(pk__in=first, profile_id__in=people.values("pk"))
                    .annotate(
                        _campaign=Value(campaign.pk),
                        _channel=Value(channel),
                        _variant=Value(target.variant),
                        _status=Value(Touch.Status.PENDING),
                        _at=Value(now),
                    )
                    .order_by()
                    .values_list(
                        "workspace_id",
                        "_campaign",
                        "target_id",
                        "profile_id",
                        "_channel",
                        "_variant",
                        "_status",
                        "_at",
                        "event_id",
                    )
                )
                columns = [
                    "workspace",
                    "campaign",
                    "target",
                    "profile",
                    "channel",
                    "variant",
                    "status",
                    "created_at",
                    "event",
                ]
                if insert_select(Touch, columns, rows):
                    campaigns.add(campaign.pk)
            touched = Touch.objects.filter(target=target, event_id=OuterRef("event_id"), created_at=now)
            result["sent"] += PendingSend.objects.filter(pk__in=mine.filter(Exists(touched)).values("pk")).update(
                status=PendingSend.Status.SENT
            )
            result["skipped"] += PendingSend.objects.filter(pk__in=mine.values("pk")).update(
                status=PendingSend.Status.SKIPPED, reason="no consent for the channel, outside the area, or capped"
            )
    if campaigns:
        from campaigns.tasks import campaign_handoff_task

        for campaign_id in sorted(campaigns):
            campaign_handoff_task.delay(campaign_id=campaign_id)
    return result
