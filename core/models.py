"""Append-only histories: consent records, the spend ledger, transitions, audit entries."""

from typing import ClassVar

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


class WorkspaceFromParent(models.Model):
    """A row of its parent's workspace (a campaign's target, an audience's run): `workspace` is
    filled from the `workspace_parent` relation when saved without one, so every table carries the
    workspace it can be distributed by."""

    workspace_parent: ClassVar[str]

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        self.fill_workspace()
        super().save(*args, **kwargs)

    def full_clean(self, *args, **kwargs) -> None:
        self.fill_workspace()
        super().full_clean(*args, **kwargs)

    def fill_workspace(self) -> None:
        if getattr(self, "workspace_id", None) is None:
            parent = getattr(self, f"{self.workspace_parent}_id", None)
            if parent is not None:
                self.workspace_id = getattr(self, self.workspace_parent).workspace_id
