"""Reads of the consent and suppression state, for the apps that use people's data.

"Contactable" and "activatable" are written once, here: segments (the consent
criterion), audiences (contactable counts, exports) and campaigns (deliveries)
all filter their people through these.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from customers.models import Identity, Profile
from customers.querysets import ProfileQuerySet, Sha256Hex
from privacy.models import ConsentRecord, Suppression

# The filters below keep the class of the queryset they are given (a ProfileQuerySet stays one).
_Profiles = TypeVar("_Profiles", bound=QuerySet[Profile])


def consent_state(*, profile: Profile, at: datetime | None = None) -> QuerySet[ConsentRecord]:
    """The consent in force per purpose and channel, now or at a past time."""
    records = ConsentRecord.objects.filter(profile=profile)
    return (records.valid_at(at) if at is not None else records.current()).order_by("purpose", "channel")


def profiles_contactable(
    *, profiles: _Profiles, workspace_id: int, purpose: str, channel: str, at: datetime | None = None
) -> _Profiles:
    """Of `profiles` (of one workspace): those whose consent in force (now, or at `at`) for this
    purpose and channel is a grant. The consent history is read for that workspace only."""
    granted = ConsentRecord.objects.filter(workspace_id=workspace_id).granted_at(
        purpose=purpose, channel=channel, when=at or timezone.now()
    )
    return profiles.filter(workspace_id=workspace_id, pk__in=granted.values("profile_id"))


def contactable_counts(
    *, profile_ids: QuerySet, workspace_id: int, pairs: Sequence[tuple[str, str]], at: datetime | None = None
) -> dict[tuple[str, str], int]:
    """Of the people in `profile_ids` (one column of profile ids of one workspace): how many are
    contactable (their consent in force is a grant) for each (purpose, channel) of `pairs`.

    The same rule as `profiles_contactable`, counted for every pair in one pass over the consent
    history (grouped by purpose and channel) instead of one pass a pair: the record in force is one
    per person, purpose and channel, so counting records counts people."""
    wanted = Q(pk__in=[])
    for purpose, channel in pairs:
        wanted |= Q(purpose=purpose, channel=channel)
    granted = (
        ConsentRecord.objects.filter(workspace_id=workspace_id)
        .filter(wanted)
        .grants_in_force(at or timezone.now())
        .filter(profile_id__in=profile_ids)
    )
    found = {
        (row["purpose"], row["channel"]): row["n"]
        for row in granted.order_by().values("purpose", "channel").annotate(n=Count("*"))
    }
    return {pair: found.get(pair, 0) for pair in pairs}


def profiles_unsuppressed(*, profiles: _Profiles, workspace_id: int) -> _Profiles:
    """Of `profiles`: those none of whose e-mails or phones is on the workspace's suppression list.

    The hashes are compared in the database (SHA-256 of the stored, normalised values),
    so the list applies set-based to a whole audience. An empty list costs one query.
    """
    listed = Suppression.objects.filter(workspace_id=workspace_id)
    if not listed.exists():
        return profiles.filter(workspace_id=workspace_id)
    by_contact = Exists(
        listed.filter(
            Q(kind="email", hash=Sha256Hex(OuterRef("email"))) | Q(kind="phone", hash=Sha256Hex(OuterRef("phone")))
        )
    )
    by_identity = Exists(
        Identity.objects.filter(profile_id=OuterRef("pk"), type__in=["email", "phone"]).filter(
            Exists(listed.filter(kind=OuterRef("type"), hash=Sha256Hex(OuterRef("value"))))
        )
    )
    return profiles.filter(workspace_id=workspace_id).exclude(by_contact).exclude(by_identity)


def profiles_activatable(*, profiles: ProfileQuerySet, workspace_id: int) -> ProfileQuerySet:
    """Of `profiles`: those that may be used in an activation at all: not erased, not suppressed."""
    return profiles_unsuppressed(profiles=profiles.not_erased(), workspace_id=workspace_id)


def profiles_reachable(
    *, profiles: ProfileQuerySet, workspace_id: int, purpose: str, channel: str, at: datetime | None = None
) -> ProfileQuerySet:
    """Of `profiles`: those contactable for the purpose and channel, neither erased nor suppressed."""
    contactable = profiles_contactable(
        profiles=profiles, workspace_id=workspace_id, purpose=purpose, channel=channel, at=at
    )
    return profiles_activatable(profiles=contactable, workspace_id=workspace_id)
