"""Where a person's data went (audience exports and campaign hand-offs), and the removal notices
sent there when the person withdraws, objects or is erased.
"""

import logging

from django.utils import timezone

from core.webhooks import DeliveryError, webhook_post
from customers.models import Profile
from privacy.models import RemovalNotice
from privacy.registry import destinations_of, removal_webhook
from privacy.suppression import identifier_hashes

logger = logging.getLogger(__name__)


def export_destinations(*, profile: Profile) -> list[dict]:
    """Every past destination of the person's data, by channel: audience exports and delivery hand-offs."""
    return destinations_of([profile.pk]).get(profile.pk, [])


def removal_notices_create(
    *,
    profile: Profile,
    channels: set[str] | None,
    reason: str,
    request=None,
    destinations: list[dict] | None = None,
) -> list[RemovalNotice]:
    """One notice per channel the person's data went to (all channels when None). A channel with an
    active webhook connector gets it signed, by a worker; the others are listed for the team.
    `destinations`: the person's, when the caller has read them already (for many people at once).
    """
    if destinations is None:
        destinations = export_destinations(profile=profile)
    destinations = [d for d in destinations if channels is None or d["channel"] in channels]
    if not destinations:
        return []
    hashes = identifier_hashes([profile.pk])[profile.pk]
    people = {
        "email_sha256": sorted(h for kind, h in hashes if kind == "email"),
        "phone_sha256": sorted(h for kind, h in hashes if kind == "phone"),
    }
    by_channel: dict[str, list[dict]] = {}
    for d in destinations:
        by_channel.setdefault(d["channel"], []).append({"type": d["type"], "id": d["id"], "at": d["at"].isoformat()})
    notices = []
    for channel, items in sorted(by_channel.items()):
        webhook = removal_webhook(workspace_id=profile.workspace_id, channel=channel)
        notices.append(
            RemovalNotice.objects.create(
                workspace_id=profile.workspace_id,
                profile=profile,
                request=request,
                channel=channel,
                destinations=items,
                reason=reason,
                payload={"reason": reason, "channel": channel, "person": people},
                status=RemovalNotice.Status.QUEUED if webhook else RemovalNotice.Status.MANUAL,
            )
        )
    from privacy.tasks import removal_notice_send_task

    for notice in notices:
        if notice.status == RemovalNotice.Status.QUEUED:
            removal_notice_send_task.delay_on_commit(notice_id=notice.pk)
    return notices


def removal_notice_send(*, notice_id: int) -> RemovalNotice | None:
    """POST the notice, signed like deliveries, to the channel's webhook; retried with backoff."""
    notice = RemovalNotice.objects.filter(pk=notice_id).first()
    if notice is None or notice.status != RemovalNotice.Status.QUEUED:
        return notice  # sent already (a redelivered task), or to be sent by hand
    webhook = removal_webhook(workspace_id=notice.workspace_id, channel=notice.channel)
    if webhook is None:
        RemovalNotice.objects.filter(pk=notice.pk).update(status=RemovalNotice.Status.MANUAL)
        return RemovalNotice.objects.get(pk=notice.pk)
    payload = {"type": "removal", "batch": f"removal-{notice.pk}", "notice": notice.pk, **notice.payload}
    try:
        attempts = webhook_post(
            url=webhook.url,
            secret=webhook.secret,
            payload=payload,
            max_attempts=webhook.max_attempts,
            timeout=webhook.timeout,
            extra_headers={"X-Cible-Batch": payload["batch"]},
        )
    except DeliveryError as exc:
        logger.warning("Removal notice %s failed: %s", notice.pk, exc)
        RemovalNotice.objects.filter(pk=notice.pk).update(
            status=RemovalNotice.Status.FAILED, attempts=webhook.max_attempts, error=str(exc)[:2000]
        )
    else:
        RemovalNotice.objects.filter(pk=notice.pk).update(
            status=RemovalNotice.Status.SENT, attempts=attempts, sent_at=timezone.now(), error=""
        )
    return RemovalNotice.objects.get(pk=notice.pk)
