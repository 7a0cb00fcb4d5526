"""Activation: a running campaign's deliveries, decided set-based, then handed to channel connectors.

For each target and channel, one INSERT ... SELECT writes a touch for every audience member
who is contactable for the channel's purpose now, inside the target's area, under every
frequency cap of the workspace, and not yet reached by this target. The hand-off then reads
the pending touches in batches, renders each one's message and gives the batch to the
channel's connector (a signed webhook, or a CSV file), checking the campaign's status before
every batch so that a pause or a cancel stops it at once.
"""

import io
import logging
import zoneinfo
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count, OuterRef, Q, Subquery, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import Workspace
from audiences.models import AudienceMember
from campaigns.experiments import in_arm
from campaigns.models import (
    CHANNEL_PURPOSE,
    Campaign,
    Connector,
    FrequencyCap,
    Handoff,
    Target,
    Touch,
)
from campaigns.preferences import routed_to
from campaigns.rendering import render
from core import csvfiles
from core.sql import insert_select
from core.webhooks import DeliveryError, webhook_post
from customers.models import Event, EventType, Profile
from customers.normalise import normalised_identifiers, sha256_identifier
from customers.querysets import ProfileQuerySet
from insights.selectors import fine_members
from privacy.models import ConsentPurpose
from privacy.selectors import profiles_contactable, profiles_reachable
from segments.compiler import compile_definition
from segments.selectors import compile_context

logger = logging.getLogger(__name__)
# Channels used under ad-targeting consent are ad platforms: they get hashed identifiers only.
PAID_MEDIA = {channel for channel, purpose in CHANNEL_PURPOSE.items() if purpose == ConsentPurpose.AD_TARGETING}


# --- deciding the deliveries --------------------------------------------------------------


def eligible_by_consent(*, workspace_id: int, channel: str, people: ProfileQuerySet, now: datetime) -> ProfileQuerySet:
    """Of `people`: those whose consent for the channel's purpose is in force now, neither erased nor suppressed."""
    return profiles_reachable(
        profiles=people, workspace_id=workspace_id, purpose=CHANNEL_PURPOSE[channel], channel=channel, at=now
    )


def eligible(
    *, workspace: Workspace, channel: str, people: ProfileQuerySet, now: datetime, restriction: dict | None = None
) -> ProfileQuerySet:
    """Of `people`: those contactable on the channel now, inside the area, under every frequency cap."""
    workspace_id = workspace.pk
    people = eligible_by_consent(workspace_id=workspace_id, channel=channel, people=people, now=now)
    if restriction:
        people = people.filter(compile_definition(restriction, compile_context(workspace=workspace, now=now)))
    for cap in FrequencyCap.objects.filter(workspace_id=workspace_id).filter(Q(channel="") | Q(channel=channel)):
        touches = Touch.objects.filter(
            workspace_id=workspace_id, created_at__gt=now - cap.window, created_at__lte=now
        ).exclude(status=Touch.Status.CANCELLED)
        if cap.channel:
            touches = touches.filter(channel=cap.channel)
        saturated = touches.values("profile_id").annotate(n=Count("*")).filter(n__gte=cap.max_touches)
        people = people.exclude(pk__in=saturated.values("profile_id"))
    return people


def _preferred_only(campaign: Campaign, channel: str, people: ProfileQuerySet, now: datetime) -> Any:
    """With "preferred channel", of `people` those whose one delivery goes to `channel`."""
    if campaign.channel_choice != "preferred" or len(campaign.channels) < 2:
        return people
    return routed_to(
        people=people,
        channel=channel,
        channels=list(campaign.channels),
        reachable=lambda other: eligible_by_consent(
            workspace_id=campaign.workspace_id,
            channel=other,
            people=Profile.objects.filter(workspace_id=campaign.workspace_id),
            now=now,
        ),
    )


def target_deliveries(*, target: Target, channel: str, now: datetime) -> int:
    """Write the touches of one (non-triggered) target on one channel; returns how many."""
    campaign = target.campaign
    if target.segment is None:
        raise ValueError(f"Target {target.pk} is triggered: it has no segment whose audience to reach.")
    audience = target.segment.audience
    members = AudienceMember.objects.current_of(audience)
    people = Profile.objects.filter(workspace_id=campaign.workspace_id, pk__in=members.values("profile_id"))
    fine = _fine(target, people)
    if fine is None:
        return 0  # a fine target whose model was removed since the campaign was scheduled
    people = eligible(
        workspace=campaign.workspace,
        channel=channel,
        people=in_arm(rows=fine, target=target),  # not the control group, nor another variant's share
        now=now,
        restriction=target.restriction,
    )
    people = _preferred_only(campaign, channel, people, now)
    already = Touch.objects.filter(target=target, channel=channel).values("profile_id")
    rows = (
        people.exclude(pk__in=already)
        .annotate(
            _ws=Value(campaign.workspace_id),
            _campaign=Value(campaign.pk),
            _target=Value(target.pk),
            _channel=Value(channel),
            _variant=Value(target.variant),
            _status=Value(Touch.Status.PENDING),
            _at=Value(now),
        )
        .order_by()
        .values_list("_ws", "_campaign", "_target", "pk", "_channel", "_variant", "_status", "_at")
    )
    columns = ["workspace", "campaign", "target", "profile", "channel", "variant", "status", "created_at"]
    return insert_select(Touch, columns, rows)


def target_people(*, target: Target, now: datetime) -> ProfileQuerySet | None:
    """The people a (non-triggered) target is for, before consent and caps: its audience's current
    members in its arm of the campaign's experiment, its fine-mode threshold and its area applied;
    None when a fine target's model is gone (programmatic publishes them for the bidder)."""
    if target.segment is None:
        raise ValueError(f"Target {target.pk} is triggered: it has no segment whose audience to reach.")
    members = AudienceMember.objects.current_of(target.segment.audience)
    people = Profile.objects.filter(workspace_id=target.workspace_id, pk__in=members.values("profile_id"))
    fine = _fine(target, people)
    if fine is not None:
        fine = in_arm(rows=fine, target=target)
    if fine is None or not target.restriction:
        return fine
    context = compile_context(workspace=target.campaign.workspace, now=now)
    return fine.filter(compile_definition(target.restriction, context))


def _fine(target: Target, people: ProfileQuerySet) -> ProfileQuerySet | None:
    """A fine target reaches the members of its segment whose membership probability is at least
    its `min_probability` (a subset of the macro audience: more precise, less reach); None when
    the segment has no scored membership model."""
    if target.mode != Target.Mode.FINE or target.segment is None:
        return people
    likely = fine_members(segment=target.segment, min_probability=target.min_probability or 0)
    return None if likely is None else people.filter(pk__in=likely)


def campaign_forecast(*, campaign: Campaign, now: datetime | None = None) -> dict[str, Any]:
    """What activating the campaign now would do, target by target and channel by channel: the
    audience's members, who of them consent, who is left out by suppression (or erasure), by the
    target's area and by the frequency caps, who was reached already, and who would receive it.
    Each figure is a COUNT over the same set-based filters the deliveries use."""
    now = now or timezone.now()
    workspace = campaign.workspace
    targets = []
    for target in campaign.targets.select_related("segment__audience").order_by("pk"):
        row: dict[str, Any] = {"target": target.pk, "variant": target.variant, "segment": target.segment_id}
        if target.segment is None:
            row.update(
                triggered_by=target.trigger_event,
                audience_computed=None,
                members=None,
                excluded_by_experiment=None,
                channels=[],
            )
            targets.append(row)
            continue
        audience = target.segment.audience
        computed = audience.current_version > 0
        members = Profile.objects.filter(
            workspace_id=campaign.workspace_id,
            pk__in=AudienceMember.objects.current_of(audience).values("profile_id"),
        )
        fine = _fine(target, members)
        # A fine target counts the members above its membership probability only.
        members = members.none() if fine is None else fine
        audience_size = members.count() if computed else 0
        # The control group and the other variants' shares of an A/B test are not contacted.
        members = in_arm(rows=members, target=target)
        arm_size = members.count() if computed else 0
        row.update(
            triggered_by=None,
            audience_computed=computed,
            members=audience_size,
            excluded_by_experiment=audience_size - arm_size,
        )
        channels = []
        for channel in campaign.channels if computed else []:
            consented = profiles_contactable(
                profiles=members,
                workspace_id=campaign.workspace_id,
                purpose=CHANNEL_PURPOSE[channel],
                channel=channel,
                at=now,
            )
            reachable = eligible_by_consent(
                workspace_id=campaign.workspace_id, channel=channel, people=members, now=now
            )
            in_area = reachable
            if target.restriction:
                in_area = reachable.filter(
                    compile_definition(target.restriction, compile_context(workspace=workspace, now=now))
                )
            under_caps = eligible(
                workspace=workspace, channel=channel, people=members, now=now, restriction=target.restriction
            )
            already = Touch.objects.filter(target=target, channel=channel).values("profile_id")
            not_reached = under_caps.exclude(pk__in=already)
            counts = {
                "consented": consented.count(),
                "reachable": reachable.count(),
                "in_area": in_area.count(),
                "already_reached": in_area.filter(pk__in=already).count(),
                "not_reached": not_reached.count(),
                "will_receive": _preferred_only(campaign, channel, not_reached, now).count(),
            }
            channels.append(
                {
                    "channel": channel,
                    "excluded_by_consent": arm_size - counts["consented"],
                    "excluded_by_suppression": counts["consented"] - counts["reachable"],
                    "excluded_by_area": counts["reachable"] - counts["in_area"],
                    "already_reached": counts["already_reached"],
                    # of those not reached yet, the ones a frequency cap holds back
                    "excluded_by_caps": counts["in_area"] - counts["already_reached"] - counts["not_reached"],
                    # with "preferred channel", those whose one delivery goes to another channel
                    "on_preferred_channel_elsewhere": counts["not_reached"] - counts["will_receive"],
                    "will_receive": counts["will_receive"],
                }
            )
        row["channels"] = channels
        targets.append(row)
    return {
        "at": now,
        "will_receive": sum(c["will_receive"] for t in targets for c in t["channels"]),
        "targets": targets,
    }


def campaign_deliveries(*, campaign_id: int, now: datetime | None = None) -> dict[str, int]:
    """Decide the deliveries of an active campaign, for the current version of each target's audience.

    Activations of one workspace run one at a time (a lock on the workspace row), so frequency
    caps hold across campaigns; a target already reached is not reached again.
    """
    now = now or timezone.now()
    written: dict[str, int] = {}
    with transaction.atomic():
        Workspace.objects.select_for_update().filter(campaigns__pk=campaign_id).first()
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None or campaign.status != Campaign.Status.ACTIVE:
            return written
        targets = campaign.targets.select_related("segment__audience", "campaign__workspace").filter(
            trigger_event="", segment__isnull=False
        )
        for target in targets:
            assert target.segment is not None  # filtered on segment__isnull=False
            audience = target.segment.audience
            if audience.current_version == 0:
                continue
            for channel in campaign.channels:
                n = target_deliveries(target=target, channel=channel, now=now)
                written[f"{target.pk}/{channel}"] = n
            Target.objects.filter(pk=target.pk).update(activated_version=audience.current_version)
    return written


# --- handing them off ----------------------------------------------------------------------


def people_data(*, profile_ids: Iterable[int]) -> dict[int, Mapping[str, Any]]:
    last_viewed = (
        Event.objects.filter(profile=OuterRef("pk"), type=EventType.PRODUCT_VIEW)
        .order_by("-occurred_at")
        .annotate(_product=Coalesce(KT("properties__name"), KT("properties__sku")))
        .values("_product")[:1]
    )
    rows = (
        Profile.objects.filter(pk__in=list(profile_ids))
        .annotate(last_product_viewed=Subquery(last_viewed))
        .values(
            "pk",
            "external_id",
            "email",
            "phone",
            "first_name",
            "last_name",
            "city",
            "postal_code",
            "last_product_viewed",
        )
    )
    return {row["pk"]: row for row in rows}


def delivery_payloads(*, touches: list[Touch], campaign: Campaign, channel: str) -> list[dict]:
    """Each touch with its rendered message and the identifiers its channel needs."""
    people = people_data(profile_ids=[t.profile_id for t in touches])
    targets = {t.pk: t for t in campaign.targets.all()}
    events = {
        e.pk: e.properties
        for e in Event.objects.filter(pk__in=[t.event_id for t in touches if t.event_id]).only("properties")
    }
    region = campaign.workspace.country
    out = []
    for touch in touches:
        person = people.get(touch.profile_id)
        target = targets.get(touch.target_id)
        if person is None or target is None:
            continue
        values = {
            **person,
            "discount_code": target.discount_code,
            "discount_percent": target.discount_percent,
        }
        email, phone = normalised_identifiers(person["email"], person["phone"], default_region=region)
        properties = events.get(touch.event_id) if touch.event_id else None
        item = {
            "touch_id": touch.pk,
            "external_id": person["external_id"],
            "variant": touch.variant,
            "subject": render(target.subject_template, values, properties),
            "body": render(target.body_template, values, properties),
            "discount_code": target.discount_code,
            "discount_percent": None if target.discount_percent is None else str(target.discount_percent),
        }
        if channel in PAID_MEDIA:
            item["email_sha256"] = sha256_identifier(email) if email else ""
            item["phone_sha256"] = sha256_identifier(phone) if phone else ""
        else:
            item.update(
                email=email,
                phone=phone,
                first_name=person["first_name"],
                last_name=person["last_name"],
                city=person["city"],
                postal_code=person["postal_code"],
            )
        out.append(item)
    return out


def connector_post(*, connector: Connector, payload: dict) -> int:
    """POST one signed batch to a webhook connector, with its retry settings; returns the attempts."""
    return webhook_post(
        url=connector.url,
        secret=connector.secret,
        payload=payload,
        max_attempts=connector.max_attempts,
        timeout=connector.timeout_seconds,
        extra_headers={"X-Cible-Batch": str(payload["batch"])},
    )


def _connector(campaign: Campaign, channel: str) -> Connector:
    """The workspace's connector for the channel; without one, deliveries go to a CSV file."""
    found = Connector.objects.filter(workspace_id=campaign.workspace_id, channel=channel, active=True).first()
    return found or Connector(workspace_id=campaign.workspace_id, channel=channel, kind=Connector.Kind.FILE)


def campaign_handoff(*, campaign_id: int) -> dict[str, int]:
    """Hand the pending touches of an active campaign to its channels' connectors, batch by batch."""
    sent: dict[str, int] = {}
    campaign = Campaign.objects.select_related("workspace").filter(pk=campaign_id).first()
    if campaign is None:
        return sent
    for channel in campaign.channels:
        touches_cancel_unreachable(campaign=campaign, channel=channel)
        connector = _connector(campaign, channel)
        sent[channel] = (
            _handoff_webhook(campaign, channel, connector)
            if connector.kind == Connector.Kind.WEBHOOK
            else _handoff_file(campaign, channel, connector)
        )
    return sent


def touches_cancel_unreachable(*, campaign: Campaign, channel: str, now: datetime | None = None) -> int:
    """Cancel the pending touches of people no longer contactable on the channel: consent withdrawn,
    an objection on the suppression list, or erased since the touch was decided. Returns how many.
    """
    pending = Touch.objects.filter(campaign=campaign, channel=channel, status=Touch.Status.PENDING)
    people = Profile.objects.filter(pk__in=pending.values("profile_id"))
    still = eligible_by_consent(
        workspace_id=campaign.workspace_id, channel=channel, people=people, now=now or timezone.now()
    )
    return pending.exclude(profile_id__in=still.values("pk")).update(status=Touch.Status.CANCELLED)


def _still_active(campaign: Campaign) -> bool:
    return Campaign.objects.filter(pk=campaign.pk).active().exists()


def _pending(campaign: Campaign, channel: str, after: int, size: int) -> list[Touch]:
    return list(
        Touch.objects.filter(campaign=campaign, channel=channel, status=Touch.Status.PENDING, pk__gt=after)
        .order_by("pk")
        .only("pk", "profile_id", "target_id", "variant", "event_id")[:size]
    )


def _mark(touches: list[Touch], status: str, campaign: Campaign, handoff: Handoff | None = None) -> int:
    fields: dict = {"status": status, "handoff": handoff}
    if status == Touch.Status.SENT:
        now = timezone.now()
        fields.update(sent_at=now, sent_day=now.astimezone(zoneinfo.ZoneInfo(campaign.workspace.time_zone)).date())
    # Only touches still pending: a cancel that came meanwhile wins.
    return Touch.objects.filter(pk__in=[t.pk for t in touches], status=Touch.Status.PENDING).update(**fields)


def _handoff_webhook(campaign: Campaign, channel: str, connector: Connector) -> int:
    total, after = 0, 0
    while _still_active(campaign):
        batch = _pending(campaign, channel, after, connector.batch_size)
        if not batch:
            break
        after = batch[-1].pk
        handoff = Handoff.objects.create(
            workspace_id=campaign.workspace_id,
            campaign=campaign,
            channel=channel,
            kind=connector.kind,
            touches=len(batch),
            status=Handoff.Status.FAILED,
        )
        payload = {
            "batch": handoff.pk,
            "campaign": {"id": campaign.pk, "name": campaign.name, "objective": campaign.objective},
            "channel": channel,
            "deliveries": delivery_payloads(touches=batch, campaign=campaign, channel=channel),
        }
        try:
            attempts = connector_post(connector=connector, payload=payload)
        except DeliveryError as exc:
            Handoff.objects.filter(pk=handoff.pk).update(attempts=connector.max_attempts, error=str(exc)[:2000])
            _mark(batch, Touch.Status.FAILED, campaign, handoff)
            logger.warning("Webhook hand-off of campaign %s failed: %s", campaign.pk, exc)
            continue
        Handoff.objects.filter(pk=handoff.pk).update(attempts=attempts, status=Handoff.Status.SENT)
        total += _mark(batch, Touch.Status.SENT, campaign, handoff)
    return total


FILE_COLUMNS = [
    "touch_id",
    "external_id",
    "variant",
    "email",
    "phone",
    "email_sha256",
    "phone_sha256",
    "first_name",
    "last_name",
    "city",
    "postal_code",
    "subject",
    "body",
    "discount_code",
    "discount_percent",
]


def _handoff_file(campaign: Campaign, channel: str, connector: Connector) -> int:
    buffer = io.StringIO()
    writer = csvfiles.DictWriter(buffer, fieldnames=FILE_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    written: list[Touch] = []
    after = 0
    while _still_active(campaign):
        batch = _pending(campaign, channel, after, 5000)
        if not batch:
            break
        after = batch[-1].pk
        writer.writerows(delivery_payloads(touches=batch, campaign=campaign, channel=channel))
        written.extend(batch)
    if not written or not _still_active(campaign):
        return 0  # paused or cancelled while the file was written: nothing is handed off
    handoff = Handoff(
        workspace_id=campaign.workspace_id,
        campaign=campaign,
        channel=channel,
        kind=Connector.Kind.FILE,
        touches=len(written),
        attempts=1,
        status=Handoff.Status.SENT,
    )
    name = f"{campaign.pk}-{channel}-{timezone.now():%Y%m%d%H%M%S}.csv"
    handoff.file.save(name, ContentFile(buffer.getvalue().encode("utf-8")), save=False)
    handoff.save()
    return sum(_mark(written[i : i + 5000], Touch.Status.SENT, campaign, handoff) for i in range(0, len(written), 5000))
