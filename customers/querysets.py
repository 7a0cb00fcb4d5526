from datetime import date

from django.db import models
from django.db.models.functions import SHA256

from core.time import years_ago


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

    def not_erased(self) -> "ProfileQuerySet":
        """Profiles that were not erased (an erased one stays as an empty row for the aggregates)."""
        return self.filter(erased_at__isnull=True)
