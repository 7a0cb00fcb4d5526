from datetime import date

from django.db import models
from django.db.models import Exists, OuterRef

from core.models import AppendOnlyQuerySet


class ConsentRecordQuerySet(AppendOnlyQuerySet):
    def current(self) -> "ConsentRecordQuerySet":
        """The latest record per profile, purpose and channel: the consent in force."""
        newer = self.model._default_manager.filter(
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
        newer = self.model._default_manager.filter(
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
        return self.filter(purpose=purpose, channel=channel).grants_in_force(when)

    def grants_in_force(self, when) -> "ConsentRecordQuerySet":
        """Of these records' purposes and channels, the grants in force at `when`."""
        from privacy.models import ConsentStatus

        return self.valid_at(when).filter(status=ConsentStatus.GRANTED)


class RequestQuerySet(models.QuerySet):
    def open(self) -> "RequestQuerySet":
        """Requests still to answer."""
        return self.filter(status__in=("received", "in_progress"))

    def overdue(self, *, today: date) -> "RequestQuerySet":
        """Open requests past their due date."""
        return self.open().filter(due_on__lt=today)
