from django.contrib import admin
from django.http import Http404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy

from accounts.admin_base import ReadOnlyScopedAdmin, roles_for
from audiences.exports import export_file_response
from audiences.models import AudienceExport, AudienceRun
from audiences.segment_admin import SegmentAudienceAdmin  # noqa: F401  (the segment page with its audience)
from core.workers import QueuedJobAdminMixin


@admin.register(AudienceRun)
class AudienceRunAdmin(ReadOnlyScopedAdmin):
    """Every computation of every audience, read-only."""

    workspace_path = "audience__workspace"
    list_display = ["started_at", "audience", "version", "status", "trigger", "size", "added", "removed", "duration_ms"]
    list_filter = ["status", "trigger", "audience__workspace"]
    list_select_related = ["audience__segment"]


@admin.register(AudienceExport)
class AudienceExportAdmin(QueuedJobAdminMixin, ReadOnlyScopedAdmin):
    """The export log: who exported which audience, for what, when and how many; and the files."""

    list_display = [
        "created_at",
        "segment",
        "purpose",
        "channel",
        "format",
        "identifiers",
        "status_shown",
        "row_count",
        "created_by",
        "download",
    ]
    list_filter = ["status", "purpose", "channel", "identifiers", "workspace"]
    list_select_related = ["segment", "created_by"]
    search_fields = ["segment__name", "created_by__username"]
    date_hierarchy = "created_at"
    exclude = ["file"]
    readonly_fields = ["download"]

    @admin.display(description=gettext_lazy("File"))
    def download(self, obj):
        if obj.status != AudienceExport.Status.READY or not obj.file:
            return "-"
        return format_html(
            '<a href="{}">Download</a>', reverse("admin:audiences_audienceexport_download", args=[obj.pk])
        )

    def get_urls(self):
        view = self.admin_site.admin_view(self.download_view)
        return [path("<path:object_id>/download/", view, name="audiences_audienceexport_download"), *super().get_urls()]

    def download_view(self, request, object_id):
        export = self.get_object(request, object_id)
        if export is None or not self.has_view_permission(request, export):
            raise Http404("No such export.")
        role = "admin" if request.user.is_superuser else roles_for(request).get(export.workspace_id)
        return export_file_response(export=export, role=role, by=request.user)
