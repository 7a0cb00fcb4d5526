"""How campaigns hear about what lower apps do: new events (triggers), merges, consent
ending, erasure, access requests and where people's data went."""

from typing import Any

from django.db.models import Count
from django.utils import timezone


def events_trigger_followup(*, workspace_id: int, event_ids: list[int]) -> None:
    """Registered with customers' event follow-ups: runs in a worker, after the ingest committed."""
    from campaigns.models import Target
    from campaigns.triggers import events_trigger

    # Cheap check first: most workspaces have no triggered campaign running.
    if Target.objects.filter(campaign__workspace_id=workspace_id).of_active_campaigns().triggered().exists():
        events_trigger(workspace_id=workspace_id, event_ids=event_ids)


# --- privacy and merges: how campaigns take part (connected in CampaignsConfig.ready) ---------


def profile_merging(sender, *, journal, **kwargs) -> None:
    # Deliveries and triggered sends follow the person: frequency caps, attribution and
    # exclusions keep counting them.
    from campaigns.models import ChannelPreference, PendingSend, Touch

    journal.move(model=Touch, name="touches")
    journal.move(model=PendingSend, name="triggered_sends")
    # Learnt again at the next computation, from both people's history.
    journal.move(
        model=ChannelPreference, name="channel_preferences", unique_with=("workspace", "channel"), keep_dropped=False
    )


def profiles_erasing(sender, *, profile_ids: list[int], **kwargs) -> dict[str, int]:
    from campaigns.models import ChannelPreference, Handoff, PendingSend, Touch

    ChannelPreference.objects.filter(profile_id__in=profile_ids).delete()
    from privacy.erasure import file_rows_drop

    handoff_touches: dict[int, set[str]] = {}
    for handoff_id, touch_id in Touch.objects.filter(
        profile_id__in=profile_ids, handoff__isnull=False, handoff__file__gt=""
    ).values_list("handoff_id", "pk"):
        handoff_touches.setdefault(handoff_id, set()).add(str(touch_id))
    return {
        "deliveries_cancelled": Touch.objects.filter(profile_id__in=profile_ids, status=Touch.Status.PENDING).update(
            status=Touch.Status.CANCELLED
        ),
        "triggered_sends_cancelled": PendingSend.objects.filter(
            profile_id__in=profile_ids, status=PendingSend.Status.WAITING
        ).update(status=PendingSend.Status.CANCELLED, reason="erasure"),
        "delivery_files": sum(
            file_rows_drop(holder=handoff, key="touch_id", values=handoff_touches[handoff.pk])
            for handoff in Handoff.objects.filter(pk__in=list(handoff_touches))
        ),
    }


def consent_ending(sender, *, ended: dict[int, set[str] | None], reason: str, **kwargs) -> dict[str, int]:
    """Cancel the pending deliveries on the channels consent ended on, and the triggered sends that no
    channel of their campaign may still carry."""
    from campaigns.models import CHANNEL_PURPOSE, PendingSend, Touch
    from privacy.models import ConsentRecord, ConsentStatus, RemovalNotice

    everywhere = [pk for pk, channels in ended.items() if channels is None]
    by_channel: dict[str, list[int]] = {}
    for pk, channels in ended.items():
        for channel in channels or ():
            by_channel.setdefault(channel, []).append(pk)
    pending = Touch.objects.filter(status=Touch.Status.PENDING)
    cancelled = pending.filter(profile_id__in=everywhere).update(status=Touch.Status.CANCELLED) if everywhere else 0
    for channel, ids in sorted(by_channel.items()):
        cancelled += pending.filter(profile_id__in=ids, channel=channel).update(status=Touch.Status.CANCELLED)
    # Channels each person may still be reached on (their grants in force for the channel's purpose).
    reachable: dict[int, set[str]] = {}
    in_force = (
        ConsentRecord.objects.filter(profile_id__in=[pk for pk, c in ended.items() if c is not None])
        .valid_at(timezone.now())
        .filter(status=ConsentStatus.GRANTED)
        .values_list("profile_id", "purpose", "channel")
    )
    for pk, purpose, channel in in_force:
        if CHANNEL_PURPOSE.get(channel) == purpose:
            reachable.setdefault(pk, set()).add(channel)
    waiting = PendingSend.objects.filter(profile_id__in=list(ended), status=PendingSend.Status.WAITING).select_related(
        "target__campaign"
    )
    stopped = [s.pk for s in waiting if not reachable.get(s.profile_id, set()).intersection(s.target.campaign.channels)]
    sends = PendingSend.objects.filter(pk__in=stopped).update(
        status=PendingSend.Status.CANCELLED, reason=RemovalNotice.Reason(reason).label.lower()
    )
    return {"touches_cancelled": cancelled, "sends_cancelled": sends}


def handoff_destinations(profile_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    from campaigns.models import Connector, Handoff, Touch

    handed = (
        Touch.objects.filter(profile_id__in=profile_ids, handoff__isnull=False)
        .values("profile_id", "handoff_id")
        .annotate(touches=Count("pk"))
        .order_by("profile_id", "handoff_id")
    )
    handoffs = {h.pk: h for h in Handoff.objects.filter(pk__in={row["handoff_id"] for row in handed})}
    workspaces = {h.workspace_id for h in handoffs.values()}
    connectors = {
        (c.workspace_id, c.channel): c
        for c in Connector.objects.filter(workspace_id__in=workspaces, kind=Connector.Kind.WEBHOOK)
    }
    found: dict[int, list[dict[str, Any]]] = {}
    for row in handed:
        handoff = handoffs[row["handoff_id"]]
        connector = connectors.get((handoff.workspace_id, handoff.channel))
        found.setdefault(row["profile_id"], []).append(
            {
                "type": "handoff",
                "id": handoff.pk,
                "channel": handoff.channel,
                "campaign": handoff.campaign_id,
                "kind": handoff.kind,
                "url": connector.url if connector and handoff.kind == Connector.Kind.WEBHOOK else "",
                "touches": row["touches"],
                "at": handoff.created_at,
                "has_file": bool(handoff.file),
            }
        )
    return found


def removal_webhook(workspace_id: int, channel: str):
    from campaigns.models import Connector
    from privacy.registry import Webhook

    connector = Connector.objects.filter(
        workspace_id=workspace_id, channel=channel, kind=Connector.Kind.WEBHOOK, active=True
    ).first()
    if connector is None:
        return None
    return Webhook(
        url=connector.url,
        secret=connector.secret,
        max_attempts=connector.max_attempts,
        timeout=connector.timeout_seconds,
    )


def access_section(profile) -> dict[str, Any]:
    from campaigns.models import PendingSend, Touch

    return {
        "deliveries": list(
            Touch.objects.filter(profile=profile)
            .order_by("created_at")
            .values("campaign_id", "campaign__name", "target__variant", "channel", "status", "created_at", "sent_at")
        ),
        "triggered_sends": list(
            PendingSend.objects.filter(profile=profile).values("target__campaign__name", "due_at", "status", "reason")
        ),
    }


def touch_timeline(profile, before, limit: int, channels):
    """The campaign deliveries the person received, for their timeline (customers.timeline)."""
    from django.db.models import F
    from django.db.models.functions import Coalesce
    from django.utils.translation import gettext

    from campaigns.models import Touch
    from customers.timeline import Entry

    rows = Touch.objects.filter(profile=profile).annotate(at=Coalesce(F("sent_at"), F("created_at")))
    if before is not None:
        rows = rows.filter(at__lte=before)
    if channels is not None:
        rows = rows.filter(channel__in=channels)
    statuses = dict(Touch.Status.choices)
    for pk, name, channel, status, at, variant in rows.order_by("-at", "-pk").values_list(
        "pk", "campaign__name", "channel", "status", "at", "variant"
    )[:limit]:
        label = gettext("Campaign %(name)s") % {"name": name}
        detail = str(statuses.get(status, status)) + (f" ({variant})" if variant else "")
        yield Entry(at, "touch", channel, label, detail, f"touch:{pk}")
