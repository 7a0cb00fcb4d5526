from datetime import date

from django.db import models
from django.db.models import Exists, OuterRef
from django.utils import timezone


def years_ago(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February in a non-leap target year
        return today.replace(year=today.year - years, day=28)


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
        from customers.models import ConsentRecord

        granted = ConsentRecord.objects.granted_at(purpose=purpose, channel=channel, when=at or timezone.now())
        return self.filter(pk__in=granted.values("profile_id"))


class AppendOnlyQuerySet(models.QuerySet):
    """Rows of an append-only history: no bulk update or delete through the ORM."""

    def update(self, **kwargs):
        raise PermissionError(f"{self.model.__name__} is append-only: rows cannot be updated.")

    def delete(self):
        raise PermissionError(f"{self.model.__name__} is append-only: rows cannot be deleted.")

    def reassign_profile(self, profile) -> int:
        """Move records to the surviving profile of a merge: their content is untouched."""
        return super().update(profile=profile)


class ConsentRecordQuerySet(AppendOnlyQuerySet):
    def current(self) -> "ConsentRecordQuerySet":
        """The latest record per profile, purpose and channel: the consent in force."""
        newer = self.model.objects.filter(
            profile=OuterRef("profile"),
            purpose=OuterRef("purpose"),
            channel=OuterRef("channel"),
        ).filter(
            models.Q(recorded_at__gt=OuterRef("recorded_at"))
            | models.Q(recorded_at=OuterRef("recorded_at"), id__gt=OuterRef("id"))
        )
        return self.filter(~Exists(newer))

    def valid_at(self, when) -> "ConsentRecordQuerySet":
        """The records that were in force at `when` (latest at or before it)."""
        newer = self.model.objects.filter(
            profile=OuterRef("profile"),
            purpose=OuterRef("purpose"),
            channel=OuterRef("channel"),
            recorded_at__lte=when,
        ).filter(
            models.Q(recorded_at__gt=OuterRef("recorded_at"))
            | models.Q(recorded_at=OuterRef("recorded_at"), id__gt=OuterRef("id"))
        )
        return self.filter(recorded_at__lte=when).filter(~Exists(newer))

    def granted_at(self, *, purpose: str, channel: str, when) -> "ConsentRecordQuerySet":
        """The grants in force at `when` for a purpose and channel: who may be used for it then."""
        from customers.models import ConsentStatus

        return self.filter(purpose=purpose, channel=channel).valid_at(when).filter(status=ConsentStatus.GRANTED)
