"""The suppression list: hashed identifiers of people who objected to direct marketing.

It is checked set-based where people are chosen for an activation (deliveries, triggered
sends, exports): `Profile.objects.unsuppressed()` compares the SHA-256 of each profile's
normalised e-mail, phone and identities with the list, in the database.
"""

import hashlib

from django.db.models import Q

from customers.models import Identity, IdentityType, Profile
from customers.normalise import normalise_email, normalise_phone
from privacy.models import Suppression


def identifier_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def normalised_identifier(kind: str, value: str, *, default_region: str) -> str | None:
    """The normalised e-mail or phone, or None when it does not parse."""
    from django.core.exceptions import ValidationError

    try:
        return (
            normalise_email(value)
            if kind == Suppression.Kind.EMAIL
            else normalise_phone(value, default_region=default_region)
        )
    except ValidationError:
        return None


def guess_kind(value: str) -> str:
    return Suppression.Kind.EMAIL if "@" in value else Suppression.Kind.PHONE


def profile_identifiers(profile_ids: list[int]) -> dict[int, set[tuple[str, str]]]:
    """Each profile's normalised e-mails and phones: its contact fields and its identities."""
    found: dict[int, set[tuple[str, str]]] = {pk: set() for pk in profile_ids}
    for pk, email, phone in Profile.objects.filter(pk__in=profile_ids).values_list("pk", "email", "phone"):
        if email:
            found[pk].add((Suppression.Kind.EMAIL, email))
        if phone:
            found[pk].add((Suppression.Kind.PHONE, phone))
    identities = Identity.objects.filter(
        profile_id__in=profile_ids, type__in=[IdentityType.EMAIL, IdentityType.PHONE]
    ).values_list("profile_id", "type", "value")
    for pk, kind, value in identities:
        found[pk].add((kind, value))
    return found


def identifier_hashes(profile_ids: list[int]) -> dict[int, set[tuple[str, str]]]:
    return {
        pk: {(kind, identifier_hash(v)) for kind, v in values}
        for pk, values in profile_identifiers(profile_ids).items()
    }


def suppression_add(*, workspace_id: int, hashes: set[tuple[str, str]], reason: str, request=None, by=None) -> int:
    """Put hashed identifiers on the list; one already there stays as it was. Returns how many are new."""
    existing = set(
        Suppression.objects.filter(workspace_id=workspace_id)
        .filter(Q(*[Q(kind=k, hash=h) for k, h in hashes], _connector=Q.OR) if hashes else Q(pk__in=[]))
        .values_list("kind", "hash")
    )
    new = [
        Suppression(workspace_id=workspace_id, kind=kind, hash=h, reason=reason, request=request, created_by=by)
        for kind, h in sorted(hashes - existing)
    ]
    Suppression.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


def is_suppressed(*, workspace_id: int, kind: str, value: str) -> bool:
    return Suppression.objects.filter(workspace_id=workspace_id, kind=kind, hash=identifier_hash(value)).exists()
