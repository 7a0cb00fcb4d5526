"""Tenancy for the API: one base class that every workspace resource inherits.

The workspace comes from the URL (`/api/workspaces/<slug>/...`). A caller who is
not a member gets a 404, exactly as for a row that does not exist, so the API
never tells whether another workspace's data exists. Subclasses describe their
rows with `model` and may narrow or annotate them in `scoped_queryset`; they
cannot override `get_queryset` or `initial`, so no view can forget the filter.
"""

import zoneinfo
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from django.db.models import Model, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext
from rest_framework import exceptions, mixins, viewsets
from rest_framework.generics import get_object_or_404

from accounts.models import Workspace
from accounts.roles import Capability, role_can
from accounts.selectors import workspace_membership

_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_SEALED = ("get_queryset", "initial", "get_object")

# The model of a viewset's rows: `WorkspaceScopedViewSet[Campaign]` types get_object() as a Campaign.
_M = TypeVar("_M", bound=Model)


class WorkspaceScopedViewSet(viewsets.GenericViewSet[_M]):
    model: ClassVar[type[Model]]
    read_capability: ClassVar[Capability] = Capability.READ
    write_capability: ClassVar[Capability] = Capability.WRITE_CUSTOMERS
    # Per-action overrides, e.g. {"merge": Capability.MERGE_PROFILES}.
    action_capabilities: ClassVar[dict[str, Capability]] = {}

    workspace: Workspace
    role: str | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in _SEALED:
            if name in cls.__dict__:
                raise TypeError(
                    f"{cls.__name__} overrides {name}(); workspace scoping lives in WorkspaceScopedViewSet. "
                    "Narrow rows in scoped_queryset() instead."
                )

    def initial(self, request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication, permissions, throttles
        slug = kwargs.get("workspace")
        found = workspace_membership(user=request.user, slug=slug) if slug else None
        if found is None:
            raise Http404
        workspace, self.role = found
        self.workspace = workspace
        # Dates are read and written in the workspace's time zone, with its offset
        # (a date-time sent without one is a time of the workspace's day).
        timezone.activate(zoneinfo.ZoneInfo(workspace.time_zone))
        needed = self.required_capability(request)
        if not role_can(self.role, needed):
            raise exceptions.PermissionDenied(
                gettext("Your role (%(role)s) in this workspace does not allow this (%(value)s).")
                % {"role": self.role, "value": needed.value}
            )

    def finalize_response(self, request, response, *args: Any, **kwargs: Any):
        timezone.deactivate()  # the thread serves other workspaces next
        return super().finalize_response(request, response, *args, **kwargs)

    def required_capability(self, request) -> Capability:
        if self.action in self.action_capabilities:
            return self.action_capabilities[self.action]
        return self.read_capability if request.method in _SAFE_METHODS else self.write_capability

    def scoped_queryset(self, queryset: QuerySet) -> QuerySet:
        return queryset

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no workspace
            return self.model._default_manager.none()
        queryset = self._rows()
        # Applied again after the subclass hook, so a hook can never widen it.
        scoped = self.scoped_queryset(queryset).filter(workspace=self.workspace)
        # Pages of a list never repeat or skip a row: a stable order when the model has none.
        return scoped if scoped.ordered else scoped.order_by("pk")

    def _rows(self) -> QuerySet:
        """The model's rows in the workspace. Through the workspace's reverse accessor when the model
        has one, so every row already holds `self.workspace` as its workspace (no join, no query)."""
        relation = self.model._meta.get_field("workspace").remote_field
        accessor = None if relation is None or relation.hidden else getattr(relation, "get_accessor_name", None)
        name = accessor() if accessor else None
        if not name:
            return self.model._default_manager.filter(workspace=self.workspace)
        return getattr(self.workspace, name).all()

    def get_object(self) -> _M:
        return super().get_object()

    def get_row(self, narrow: Callable[[QuerySet], QuerySet]) -> Any:
        """get_object() for the lean read paths (core.lean): the same row, looked up and refused the same
        way, from the view's rows as `narrow` reads them (as values, without a prefetch...)."""
        queryset = narrow(self.filter_queryset(self.get_queryset()))
        lookup_url_kwarg = self.lookup_url_kwarg or self.lookup_field
        row = get_object_or_404(queryset, **{self.lookup_field: self.kwargs[lookup_url_kwarg]})
        self.check_object_permissions(self.request, row)
        return row

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        # One row by its id: the list's filters and ordering say nothing about it, and building
        # the FilterSet for every detail read costs more than the read itself.
        if (self.lookup_url_kwarg or self.lookup_field) in self.kwargs:
            return queryset
        return super().filter_queryset(queryset)

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "workspace": getattr(self, "workspace", None)}


class ReadOnlyWorkspaceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceScopedViewSet[_M]):
    pass
