from django.contrib import admin

from accounts.admin_base import WorkspaceScopedAdmin
from audiences.models import AudienceRun


@admin.register(AudienceRun)
class AudienceRunAdmin(WorkspaceScopedAdmin):
    """Every computation of every audience, read-only."""

    workspace_path = "audience__workspace"
    list_display = ["started_at", "audience", "version", "status", "trigger", "size", "added", "removed", "duration_ms"]
    list_filter = ["status", "trigger", "audience__workspace"]
    list_select_related = ["audience__segment"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
