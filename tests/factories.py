"""Typed factories for the test suite (real rows in the real database)."""

from datetime import datetime
from itertools import count

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.utils import timezone

from accounts.models import Role, Workspace
from accounts.services import membership_set, token_get_or_create, workspace_create
from customers.models import ConsentRecord, Event, Order, Profile

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
