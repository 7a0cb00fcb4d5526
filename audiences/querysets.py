from django.db import models
from django.db.models import F


class AudienceMemberQuerySet(models.QuerySet):
    def of_version(self, *, audience_id: int, version: int) -> "AudienceMemberQuerySet":
        """The members of one version of an audience."""
        return self.filter(audience_id=audience_id, version=version)

    def current_of(self, audience) -> "AudienceMemberQuerySet":
        """The members of the audience's current version (none before its first computation)."""
        return self.of_version(audience_id=audience.pk, version=audience.current_version)

    def current(self) -> "AudienceMemberQuerySet":
        """The rows of every audience's current version."""
        return self.filter(audience__current_version=F("version"))
