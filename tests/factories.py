"""Typed factories for the test suite (real rows in the real database)."""

from datetime import datetime
from itertools import count

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.utils import timezone

from accounts.models import Role, Workspace
from accounts.services import membership_set, token_get_or_create, workspace_create
from customers.models import Event, Order, Profile
from privacy.models import ConsentRecord

_serial = count(1)


def make_workspace(*, slug: str | None = None, currency: str = "EUR") -> Workspace:
    n = next(_serial)
    slug = slug or f"ws-{n}"
    return workspace_create(name=f"Workspace {slug}", slug=slug, currency=currency, time_zone="Europe/Paris")


def make_user(
    *, workspace: Workspace | None = None, role: str = Role.MARKETER, username: str | None = None
) -> AbstractUser:
    n = next(_serial)
    user = get_user_model().objects.create_user(
        username=username or f"user{n}", password="pw-" + str(n), email=f"u{n}@example.com"
    )
    if workspace is not None:
        membership_set(workspace=workspace, user=user, role=role)
    return user


def token_for(user) -> str:
    return token_get_or_create(user=user).key


def make_profile(*, workspace: Workspace, external_id: str | None = None, **fields) -> Profile:
    return Profile.objects.create(workspace=workspace, external_id=external_id or f"P{next(_serial)}", **fields)


def make_event(
    *, profile: Profile, type: str = "page_view", channel: str = "web", occurred_at: datetime | None = None, **fields
) -> Event:
    return Event.objects.create(
        workspace_id=profile.workspace_id,
        profile=profile,
        type=type,
        channel=channel,
        occurred_at=occurred_at or timezone.now(),
        idempotency_key=f"k{next(_serial)}",
        **fields,
    )


def make_order(*, profile: Profile, amount: str = "10.00", **fields) -> Order:
    return Order.objects.create(
        workspace_id=profile.workspace_id,
        profile=profile,
        order_id=f"O{next(_serial)}",
        amount=amount,
        currency="EUR",
        ordered_at=fields.pop("ordered_at", timezone.now()),
        channel=fields.pop("channel", "web"),
        **fields,
    )


def make_consent(
    *,
    profile: Profile,
    purpose: str = "direct_marketing",
    channel: str = "email",
    status: str = "granted",
    recorded_at: datetime | None = None,
) -> ConsentRecord:
    return ConsentRecord.objects.create(
        workspace_id=profile.workspace_id,
        profile=profile,
        purpose=purpose,
        channel=channel,
        status=status,
        recorded_at=recorded_at or timezone.now(),
        source="test",
    )


def make_segment(*, workspace: Workspace, name: str | None = None, definition: dict | None = None, compute=True):
    """A dynamic segment (everyone by default), its audience computed."""
    from audiences.services import audience_compute
    from segments.models import Segment
    from segments.services import segment_create

    segment = segment_create(
        workspace=workspace,
        name=name or f"Segment {next(_serial)}",
        definition=definition or {"field": "country", "op": "is_set", "value": True},
    )
    if compute:
        audience_compute(segment_id=segment.pk)
    return Segment.objects.select_related("audience").get(pk=segment.pk)


def make_campaign(*, workspace: Workspace, segment=None, channels=("email",), targets=None, **fields):
    """A draft campaign running from an hour ago for 30 days, with one macro target on `segment`."""
    from datetime import timedelta

    from campaigns.services import campaign_create

    now = timezone.now()
    fields.setdefault("name", f"Campaign {next(_serial)}")
    fields.setdefault("starts_at", now - timedelta(hours=1))
    fields.setdefault("ends_at", now + timedelta(days=30))
    if targets is None:
        targets = [{"segment": segment, "variant": "A", "subject_template": "Hello {{first_name}}"}] if segment else []
    return campaign_create(workspace=workspace, channels=list(channels), targets=targets, **fields)


def make_touch(*, campaign, target, profile, channel: str = "email", sent_at: datetime | None = None, **fields):
    """A delivery handed to the channel at `sent_at` (now by default)."""
    from campaigns.models import Touch
    from core.time import local_day

    sent_at = sent_at or timezone.now()
    return Touch.objects.create(
        workspace_id=campaign.workspace_id,
        campaign=campaign,
        target=target,
        profile=profile,
        channel=channel,
        variant=target.variant,
        status=fields.pop("status", Touch.Status.SENT),
        created_at=fields.pop("created_at", sent_at),
        sent_at=sent_at,
        sent_day=local_day(campaign.workspace, sent_at),
        **fields,
    )


def make_running_campaign(*, workspace: Workspace, targets: int = 1, channels=("email",), **fields):
    """An active campaign that started 20 days ago, with `targets` targets, each on its own segment of everyone."""
    from datetime import timedelta

    from campaigns.models import Campaign

    now = timezone.now()
    segments = [make_segment(workspace=workspace, compute=False) for _ in range(targets)]
    fields.setdefault("starts_at", now - timedelta(days=20))
    fields.setdefault("ends_at", now + timedelta(days=10))
    fields.setdefault("currency", "EUR")
    campaign = make_campaign(
        workspace=workspace,
        channels=channels,
        targets=[{"segment": segment, "variant": chr(65 + i)} for i, segment in enumerate(segments)],
        **fields,
    )
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ACTIVE, activated_at=fields["starts_at"])
    campaign.refresh_from_db()
    return campaign


def yesterday_at(workspace: Workspace, hour: int) -> datetime:
    """Yesterday at `hour` o'clock in the workspace's calendar: a moment whose local day does not
    depend on the time of day the test runs (now minus 25 hours is today's date around midnight)."""
    import zoneinfo
    from datetime import time, timedelta

    zone = zoneinfo.ZoneInfo(workspace.time_zone)
    day = timezone.now().astimezone(zone).date() - timedelta(days=1)
    return datetime.combine(day, time(hour), tzinfo=zone)
