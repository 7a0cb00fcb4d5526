"""What a marketer looks at while setting a campaign up: its overlap with the campaigns already
running, its message rendered for a real member of each target, a test send of that message to
herself, and the campaigns laid out on a calendar.

The reach per channel (who consents, who a suppression, the area or a frequency cap leaves out,
who would receive it) is `activation.campaign_forecast`; each figure here is set-based too.
"""

from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from audiences.models import AudienceMember
from campaigns.activation import connector_post, people_data
from campaigns.experiments import in_arm
from campaigns.models import Campaign, Connector, Target
from campaigns.rendering import render
from core.webhooks import DeliveryError
from customers.models import Profile
from customers.normalise import normalised_identifiers


def _members_of(targets: QuerySet[Target]) -> QuerySet:
    """The profile ids of the current audiences of these targets' segments (one column)."""
    versions = Q(pk__in=[])
    for audience_id, version in targets.filter(segment__isnull=False).values_list(
        "segment__audience__pk", "segment__audience__current_version"
    ):
        if version:
            versions |= Q(audience_id=audience_id, version=version)
    return AudienceMember.objects.filter(versions).values("profile_id")


def campaign_overlap(*, campaign: Campaign) -> list[dict[str, Any]]:
    """For each other campaign of the workspace that is running or about to: how many people its
    targets' audiences share with this campaign's."""
    mine = _members_of(campaign.targets.all())
    others = Campaign.objects.filter(
        workspace_id=campaign.workspace_id, status__in=[Campaign.Status.ACTIVE, Campaign.Status.SCHEDULED]
    ).exclude(pk=campaign.pk)
    rows = []
    for other in others.order_by("starts_at")[:20]:
        shared = (
            Profile.objects.filter(workspace_id=campaign.workspace_id, pk__in=mine)
            .filter(pk__in=_members_of(other.targets.all()))
            .count()
        )
        rows.append(
            {"campaign": other, "shared": shared, "channels": sorted(set(other.channels) & set(campaign.channels))}
        )
    return rows


def message_preview(*, target: Target) -> dict[str, Any] | None:
    """The target's message rendered for a real member of its audience (the first of its share of
    an A/B test, out of the control group); None when the audience has nobody yet."""
    if target.segment is None:
        return None
    audience = target.segment.audience
    members = Profile.objects.filter(
        workspace_id=target.campaign.workspace_id,
        pk__in=AudienceMember.objects.current_of(audience).values("profile_id"),
    )
    first = in_arm(rows=members, target=target).order_by("pk").values_list("pk", flat=True).first()
    if first is None:
        return None
    person = people_data(profile_ids=[first])[first]
    values = {**person, "discount_code": target.discount_code, "discount_percent": target.discount_percent}
    return {
        "profile": person["external_id"],
        "subject": render(target.subject_template, values),
        "body": render(target.body_template, values),
        "values": person,
    }


def message_test_send(*, target: Target, channel: str, email: str = "", phone: str = "") -> str:
    """Send the target's message, rendered for a real member, to the person setting it up, through
    the channel's webhook connector; the batch says it is a test. Returns where it went; raises
    ValueError saying why it could not be sent."""
    campaign = target.campaign
    preview = message_preview(target=target)
    if preview is None:
        raise ValueError(_("The audience has nobody yet: compute it first."))
    connector = Connector.objects.filter(
        workspace_id=campaign.workspace_id, channel=channel, kind=Connector.Kind.WEBHOOK
    ).first()
    if connector is None:
        raise ValueError(
            _("No webhook connector for %(channel)s: the preview above is what would be sent.") % {"channel": channel}
        )
    to_email, to_phone = normalised_identifiers(email, phone, default_region=campaign.workspace.country)
    if not to_email and not to_phone:
        raise ValueError(_("Your account has no e-mail address to send the test to."))
    payload = {
        "batch": f"test-{campaign.pk}-{target.pk}-{int(timezone.now().timestamp())}",
        "test": True,
        "campaign": {"id": campaign.pk, "name": campaign.name, "objective": campaign.objective},
        "channel": channel,
        "deliveries": [
            {
                "touch_id": None,
                "external_id": preview["profile"],
                "variant": target.variant,
                "subject": preview["subject"],
                "body": preview["body"],
                "email": to_email,
                "phone": to_phone,
                "discount_code": target.discount_code,
                "discount_percent": None if target.discount_percent is None else str(target.discount_percent),
            }
        ],
    }
    try:
        connector_post(connector=connector, payload=payload)
    except DeliveryError as exc:
        raise ValueError(_("The connector refused the test: %(error)s") % {"error": exc}) from exc
    return _("Sent to %(to)s through %(url)s.") % {"to": to_email or to_phone, "url": connector.url}


def campaign_calendar(*, workspace_ids: list[int], month: date) -> dict[str, Any]:
    """The campaigns of these workspaces that run during the month, each with the days it covers,
    its channels and its targets' segments."""
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    days = [first + timedelta(days=n) for n in range((following - first).days)]
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    end = timezone.make_aware(datetime.combine(following, datetime.min.time()))
    campaigns = (
        Campaign.objects.filter(workspace_id__in=workspace_ids, starts_at__lt=end, ends_at__gte=start)
        .exclude(status=Campaign.Status.CANCELLED)
        .prefetch_related("targets__segment")
        .order_by("starts_at", "pk")[:200]
    )
    rows = []
    for campaign in campaigns:
        begins = timezone.localtime(campaign.starts_at).date()
        ends = timezone.localtime(campaign.ends_at).date()
        rows.append(
            {
                "campaign": campaign,
                "channels": campaign.channels,
                "segments": sorted({t.segment.name for t in campaign.targets.all() if t.segment is not None}),
                "cells": [begins <= day <= ends for day in days],
            }
        )
    return {
        "month": first,
        "previous": (first - timedelta(days=1)).replace(day=1),
        "next": following,
        "days": days,
        "rows": rows,
    }
