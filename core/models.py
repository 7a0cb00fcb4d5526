"""Append-only histories: consent records, the spend ledger, transitions, audit entries."""

from django.db import models


class AppendOnlyQuerySet(models.QuerySet):
    """Rows of an append-only history: no bulk update or delete through the ORM."""

    def update(self, **kwargs):
        raise PermissionError(f"{self.model.__name__} is append-only: rows cannot be updated.")

    def delete(self):
        raise PermissionError(f"{self.model.__name__} is append-only: rows cannot be deleted.")

    def reassign_profile(self, profile) -> int:
        """Move records to the surviving profile of a merge: their content is untouched."""
        return super().update(profile=profile)


class AppendOnlyModel(models.Model):
    """A history row: written once, never changed or deleted through the ORM."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not self._state.adding:
            raise PermissionError(f"{type(self).__name__} is append-only: rows cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError(f"{type(self).__name__} is append-only: rows cannot be deleted.")
