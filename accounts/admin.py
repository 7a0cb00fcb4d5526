from django.contrib import admin

from accounts.admin_base import WorkspaceScopedAdmin, roles_for, workspace_ids_with
from accounts.models import Membership, Workspace
from accounts.roles import Capability
from accounts.services import membership_set


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "currency", "time_zone", "country", "language", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(pk__in=list(roles_for(request)))

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff and bool(roles_for(request))

    def has_view_permission(self, request, obj=None) -> bool:
        return self.has_module_permission(request) if obj is None else obj.pk in roles_for(request)

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        allowed = workspace_ids_with(request, Capability.MANAGE_WORKSPACE)
        return bool(allowed) if obj is None else obj.pk in allowed

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        return ["slug"] if obj is not None else []


@admin.register(Membership)
class MembershipAdmin(WorkspaceScopedAdmin):
    write_capability = Capability.MANAGE_WORKSPACE
    list_display = ["user", "workspace", "role", "created_at"]
    list_filter = ["role", "workspace"]
    search_fields = ["user__username", "user__email"]
    autocomplete_fields = ["user"]

    def save_model(self, request, obj, form, change):
        saved = membership_set(workspace=obj.workspace, user=obj.user, role=obj.role)
        obj.pk = saved.pk
