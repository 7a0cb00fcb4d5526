"""The suppression list: hashed identifiers of people who objected to direct marketing.

It is checked set-based where people are chosen for an activation (deliveries, triggered
sends, exports): `privacy.selectors.profiles_unsuppressed` compares the SHA-256 of each profile's
normalised e-mail, phone and identities with the list, in the database.
"""

from django.db.models import Q

from customers.models import Identity, IdentityType, Profile
from customers.normalise import normalised_identifiers, sha256_identifier
from privacy.models import Suppression


def hashed_identifier(raw: str, *, default_region: str) -> tuple[str, str] | None:
    """(kind, hash) of an e-mail or phone as a person gave it, or None when it is neither."""
    kind = Suppression.Kind.EMAIL if "@" in raw else Suppression.Kind.PHONE
    email, phone = normalised_identifiers(
        raw if kind == Suppression.Kind.EMAIL else "",
        raw if kind == Suppression.Kind.PHONE else "",
        default_region=default_region,
    )
    value = email or phone
    return (kind, sha256_identifier(value)) if value else None


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
        pk: {(kind, sha256_identifier(v)) for kind, v in values}
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
