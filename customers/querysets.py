from datetime import date

from django.db import models
from django.db.models import Exists, OuterRef
from django.db.models.functions import SHA256
from django.utils import timezone


def years_ago(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February in a non-leap target year
        return today.replace(year=today.year - years, day=28)


class Sha256Hex(SHA256):
    """SHA-256 of a text, in hex. PostgreSQL's built-in sha256() (11+), not pgcrypto's digest()."""

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler, connection, template="ENCODE(SHA256(CONVERT_TO(%(expressions)s, 'UTF8')), 'hex')", **extra_context
        )


class ProfileQuerySet(models.QuerySet):
    def for_workspace(self, workspace) -> "ProfileQuerySet":
        """Profiles of one workspace."""
        return self.filter(workspace=workspace)

    def aged_between(self, low: int | None, high: int | None, *, today: date) -> "ProfileQuerySet":
        """Profiles whose age today is within [low, high], as a birth-date range (index friendly)."""
        qs = self
        if low is not None:
            qs = qs.filter(birth_date__lte=years_ago(today, low))
        if high is not None:
            # Age <= high means born after the day the person would have turned high + 1.
            qs = qs.filter(birth_date__gt=years_ago(today, high + 1))
        return qs

    def contactable_for(self, *, purpose: str, channel: str, at=None) -> "ProfileQuerySet":
        """Profiles whose consent in force (now, or at `at`) for this purpose and channel is a grant."""
        from privacy.models import ConsentRecord

        granted = ConsentRecord.objects.granted_at(purpose=purpose, channel=channel, when=at or timezone.now())
        return self.filter(pk__in=granted.values("profile_id"))

    def not_erased(self) -> "ProfileQuerySet":
        """Profiles that were not erased (an erased one stays as an empty row for the aggregates)."""
        return self.filter(erased_at__isnull=True)

    def unsuppressed(self, *, workspace_id: int) -> "ProfileQuerySet":
        """Profiles none of whose e-mails or phones is on the workspace's suppression list.

        The hashes are compared in the database (SHA-256 of the stored, normalised values),
        so the list applies set-based to a whole audience. An empty list costs one query.
        """
        from customers.models import Identity
        from privacy.models import Suppression

        listed = Suppression.objects.filter(workspace_id=workspace_id)
        if not listed.exists():
            return self.filter(workspace_id=workspace_id)
        by_contact = Exists(
            listed.filter(
                models.Q(kind="email", hash=Sha256Hex(OuterRef("email")))
                | models.Q(kind="phone", hash=Sha256Hex(OuterRef("phone")))
            )
        )
        by_identity = Exists(
            Identity.objects.filter(profile_id=OuterRef("pk"), type__in=["email", "phone"]).filter(
                Exists(listed.filter(kind=OuterRef("type"), hash=Sha256Hex(OuterRef("value"))))
            )
        )
        return self.filter(workspace_id=workspace_id).exclude(by_contact).exclude(by_identity)

    def activatable(self, *, workspace_id: int) -> "ProfileQuerySet":
        """Profiles that may be used in an activation at all: not erased, not suppressed."""
        return self.not_erased().unsuppressed(workspace_id=workspace_id)


class AppendOnlyQuerySet(models.QuerySet):
    """Rows of an append-only history: no bulk update or delete through the ORM."""

    def update(self, **kwargs):
        raise PermissionError(f"{self.model.__name__} is append-only: rows cannot be updated.")

    def delete(self):
        raise PermissionError(f"{self.model.__name__} is append-only: rows cannot be deleted.")

    def reassign_profile(self, profile) -> int:
        """Move records to the surviving profile of a merge: their content is untouched."""
        return super().update(profile=profile)
