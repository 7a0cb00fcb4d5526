"""The admin's clock: every date and time in a workspace's zone, with the zone shown.

The API gives times in the workspace's zone (accounts.api.base); the admin does the same. A
list is read in the zone of the workspace it is filtered on, or of the user's workspaces when
they share one zone, or else of the first of them; a change page is read and saved in the zone
of its object's workspace (WorkspaceScopedAdmin.changeform_view). The header names the zone.
"""

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.models import Workspace

ADMIN_PREFIX = "/admin/"
WORKSPACE_FILTER = "workspace__id__exact"


def user_zones(user) -> dict[int, str]:
    """{workspace id: time zone} of the workspaces the user may see in the admin."""
    workspaces = Workspace.objects.all() if user.is_superuser else Workspace.objects.filter(memberships__user=user)
    return dict(workspaces.order_by("pk").values_list("pk", "time_zone"))


def list_zone(request: HttpRequest, zones: dict[int, str]) -> str | None:
    if not zones:
        return None
    chosen = request.GET.get(WORKSPACE_FILTER, "")
    if chosen.isdigit() and int(chosen) in zones:
        return zones[int(chosen)]
    return next(iter(zones.values()))  # one zone for all of them, or the first workspace's


class AdminTimeZoneMiddleware:
    """After authentication: activates the zone for admin pages of signed-in staff."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if not request.path.startswith(ADMIN_PREFIX) or user is None or not user.is_authenticated:
            return self.get_response(request)
        zone = list_zone(request, user_zones(user))
        if zone is None:
            return self.get_response(request)
        with timezone.override(zoneinfo.ZoneInfo(zone)):
            response = self.get_response(request)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()  # templates read the zone when they render, so inside it
        return response
