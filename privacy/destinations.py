"""Where a person's data went (audience exports and campaign hand-offs), and the removal notices
sent there when the person withdraws, objects or is erased.
"""

import logging

from django.db.models import Count, Max
from django.utils import timezone

from customers.models import Profile
from privacy.models import RemovalNotice
from privacy.suppression import identifier_hashes

logger = logging.getLogger(__name__)


def export_destinations(*, profile: Profile) -> list[dict]:
    """Every past destination of the person's data, by channel: audience exports and delivery hand-offs."""
    from audiences.models import AudienceExport, AudienceExportMember
    from campaigns.models import Connector, Handoff, Touch

    out = []
    exports = AudienceExport.objects.filter(
        pk__in=AudienceExportMember.objects.filter(profile=profile).values("export_id")
    ).order_by("created_at")
    for export in exports:
        out.append(
            {
                "type": "audience_export",
                "id": export.pk,
                "channel": export.channel,
                "purpose": export.purpose,
                "identifiers": export.identifiers,
                "segment": export.segment_id,
                "at": export.created_at,
                "has_file": bool(export.file),
            }
        )
    handed = (
        Touch.objects.filter(profile=profile, handoff__isnull=False)
        .values("handoff_id")
        .annotate(touches=Count("pk"), last=Max("sent_at"))
    )
    handoffs = {h.pk: h for h in Handoff.objects.filter(pk__in=[row["handoff_id"] for row in handed])}
    connectors = {
        c.channel: c for c in Connector.objects.filter(workspace_id=profile.workspace_id, kind=Connector.Kind.WEBHOOK)
    }
    for row in handed:
        handoff = handoffs[row["handoff_id"]]
        connector = connectors.get(handoff.channel)
        out.append(
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
    return out


def removal_notices_create(
    *, profile: Profile, channels: set[str] | None, reason: str, request=None
) -> list[RemovalNotice]:
    """One notice per channel the person's data went to (all channels when None). A channel with an
    active webhook connector gets it signed, by a worker; the others are listed for the team.
    """
    from campaigns.models import Connector

    destinations = [d for d in export_destinations(profile=profile) if channels is None or d["channel"] in channels]
    if not destinations:
        return []
    hashes = identifier_hashes([profile.pk])[profile.pk]
    people = {
        "email_sha256": sorted(h for kind, h in hashes if kind == "email"),
        "phone_sha256": sorted(h for kind, h in hashes if kind == "phone"),
    }
    webhooks = set(
        Connector.objects.filter(
            workspace_id=profile.workspace_id, kind=Connector.Kind.WEBHOOK, active=True
        ).values_list("channel", flat=True)
    )
    by_channel: dict[str, list[dict]] = {}
    for d in destinations:
        by_channel.setdefault(d["channel"], []).append({"type": d["type"], "id": d["id"], "at": d["at"].isoformat()})
    notices = []
    for channel, items in sorted(by_channel.items()):
        notices.append(
            RemovalNotice.objects.create(
                workspace_id=profile.workspace_id,
                profile=profile,
                request=request,
                channel=channel,
                destinations=items,
                reason=reason,
                payload={"reason": reason, "channel": channel, "person": people},
                status=RemovalNotice.Status.QUEUED if channel in webhooks else RemovalNotice.Status.MANUAL,
            )
        )
    from privacy.tasks import removal_notice_send_task

    for notice in notices:
        if notice.status == RemovalNotice.Status.QUEUED:
            removal_notice_send_task.delay_on_commit(notice_id=notice.pk)
    return notices


def removal_notice_send(*, notice_id: int) -> RemovalNotice | None:
    """POST the notice, signed like deliveries, to the channel's webhook; retried with backoff."""
    from campaigns.activation import DeliveryError, webhook_post
    from campaigns.models import Connector

    notice = RemovalNotice.objects.filter(pk=notice_id).first()
    if notice is None or notice.status != RemovalNotice.Status.QUEUED:
        return notice  # sent already (a redelivered task), or to be sent by hand
    connector = Connector.objects.filter(
        workspace_id=notice.workspace_id, channel=notice.channel, kind=Connector.Kind.WEBHOOK, active=True
    ).first()
    if connector is None:
        RemovalNotice.objects.filter(pk=notice.pk).update(status=RemovalNotice.Status.MANUAL)
        return RemovalNotice.objects.get(pk=notice.pk)
    payload = {"type": "removal", "batch": f"removal-{notice.pk}", "notice": notice.pk, **notice.payload}
    try:
        attempts = webhook_post(connector, payload)
    except DeliveryError as exc:
        logger.warning("Removal notice %s failed: %s", notice.pk, exc)
        RemovalNotice.objects.filter(pk=notice.pk).update(
            status=RemovalNotice.Status.FAILED, attempts=connector.max_attempts, error=str(exc)[:2000]
        )
    else:
        RemovalNotice.objects.filter(pk=notice.pk).update(
            status=RemovalNotice.Status.SENT, attempts=attempts, sent_at=timezone.now(), error=""
        )
    return RemovalNotice.objects.get(pk=notice.pk)
