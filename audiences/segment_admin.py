"""The segment page with its computed audience: status, size over time, computations, refresh
and exports. It extends the segments' own admin (rules, index table) and takes its place."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.admin_base import admin_datetime, errors_as_messages, roles_for
from accounts.roles import Capability, role_can
from audiences import admin_panels
from audiences.admin_panels import ExportForm, exports_panel
from audiences.exports import export_request
from audiences.models import AudienceRun
from audiences.services import audience_refresh_request
from segments.admin import SegmentAdmin
from segments.admin_panels import form_errors
from segments.models import Segment


class SegmentAudienceAdmin(SegmentAdmin):
    list_display = ["name", "kind", "audience_status", "audience_size", "computed", "refresh_every", "workspace"]
    list_filter = ["workspace", "kind", "audience__status"]
    list_select_related = ["audience", "workspace"]
    readonly_fields = ["audience_summary", "size_chart", "history", *SegmentAdmin.readonly_fields, "exports"]
    actions = ["refresh_audiences"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        rules, about, *rest = fieldsets
        audience = (
            gettext_lazy("Audience"),
            {"fields": ["audience_summary", "size_chart", "history", *about[1]["fields"]]},
        )
        return [rules, audience, *rest, (gettext_lazy("Exports"), {"fields": ["exports"]})]

    def get_urls(self):
        def route(pattern, function, name):
            return path(pattern, self.admin_site.admin_view(function), name=f"segments_segment_{name}")

        urls = [
            route("<path:object_id>/refresh/", require_POST(self.refresh_view), "refresh"),
            route("<path:object_id>/export/", require_POST(self.export_view), "export"),
        ]
        return [*urls, *super().get_urls()]

    def job_statuses(self, segment: Segment) -> dict[str, str]:
        return {**admin_panels.job_statuses(segment), **super().job_statuses(segment)}

    @admin.display(description=gettext_lazy("Status"), ordering="audience__status")
    def audience_status(self, obj):
        return obj.audience.get_status_display()

    @admin.display(description=gettext_lazy("Size"), ordering="audience__size")
    def audience_size(self, obj):
        return obj.audience.size if obj.audience.current_version else "-"

    @admin.display(description=gettext_lazy("Computed"), ordering="audience__computed_at")
    def computed(self, obj):
        return admin_datetime(obj.audience.computed_at)

    @admin.display(description=gettext_lazy("Audience"))
    def audience_summary(self, obj):
        audience = obj.audience
        contactable = format_html_join(", ", "{}: {}", sorted(audience.contactable.items())) or "-"
        refresh = (
            format_html(
                ' <button type="submit" class="button cible-action" name="_refresh" formaction="{}" '
                'formmethod="post" formnovalidate>{}</button>',
                reverse("admin:segments_segment_refresh", args=[obj.pk]),
                _("Refresh now"),
            )
            if getattr(obj, "_can_write", False)
            else ""
        )
        return format_html(
            _(
                '<strong class="cible-status" data-job="audience" data-status="{}">{}</strong> — version {}, {} members,'
                " computed {}{}<br>Contactable: {}"
            ),
            audience.status,
            audience.get_status_display(),
            audience.current_version,
            audience.size,
            admin_datetime(audience.computed_at),
            refresh,
            contactable,
        )

    @admin.display(description=gettext_lazy("Exports"))
    def exports(self, obj):
        return exports_panel(
            obj, can_write=getattr(obj, "_can_write", False), can_export_plain=getattr(obj, "_can_export_plain", False)
        )

    def get_object(self, request, object_id, from_field=None):
        segment = super().get_object(request, object_id, from_field)
        if segment is not None:
            role = "admin" if request.user.is_superuser else roles_for(request).get(segment.workspace_id)
            segment._can_export_plain = role is not None and role_can(role, Capability.EXPORT_PLAIN)
        return segment

    @admin.display(description=gettext_lazy("Size over time"))
    def size_chart(self, obj):
        runs = list(AudienceRun.objects.filter(audience=obj.audience, status="succeeded").order_by("-started_at")[:60])[
            ::-1
        ]
        if len(runs) < 2:
            return _("Shown after two computations.")
        width, height = 600, 120
        top = max(run.size for run in runs) or 1
        step = width / (len(runs) - 1)
        points = " ".join(
            f"{i * step:.1f},{height - (run.size / top) * (height - 10):.1f}" for i, run in enumerate(runs)
        )
        labels = f"{admin_datetime(runs[0].started_at)} → {admin_datetime(runs[-1].started_at)}; max {top}"
        return mark_safe(  # numbers and dates only
            f'<svg class="cible-size-chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="Audience size over time"><polyline fill="none" stroke="#417690" stroke-width="2" '
            f'points="{points}"/></svg><div>{labels}</div>'
        )

    @admin.display(description=gettext_lazy("Last computations"))
    def history(self, obj):
        runs = AudienceRun.objects.filter(audience=obj.audience)[:10]
        rows = (
            (
                admin_datetime(r.started_at),
                r.get_status_display(),
                r.trigger,
                r.size if r.size is not None else "-",
                r.added if r.added is not None else "-",
                r.removed if r.removed is not None else "-",
                f"{r.duration_ms} ms" if r.duration_ms is not None else "-",
                r.error or "",
            )
            for r in runs
        )
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>+{}</td><td>-{}</td><td>{}</td><td>{}</td></tr>",
            rows,
        )
        return (
            format_html(
                '<table class="cible-history"><thead><tr><th>Started</th><th>Status</th><th>Trigger</th><th>Size</th>'
                "<th>Added</th><th>Removed</th><th>Duration</th><th>Error</th></tr></thead><tbody>{}</tbody></table>",
                body,
            )
            if runs
            else _("Never computed.")
        )

    @admin.action(description=gettext_lazy("Refresh the audiences of the selected segments"))
    def refresh_audiences(self, request, queryset: QuerySet[Segment]):
        roles = roles_for(request)
        count = 0
        for segment in queryset:
            if role_can(roles.get(segment.workspace_id), Capability.WRITE_CUSTOMERS):
                audience_refresh_request(segment=segment, trigger="manual", by=request.user)
                count += 1
        self.message_user(request, _("Refresh queued for %(n)s segment(s).") % {"n": count}, messages.SUCCESS)

    def refresh_view(self, request, object_id):
        segment = self._segment(request, object_id, write=True)
        audience = audience_refresh_request(segment=segment, trigger="manual", by=request.user)
        self.message_user(
            request,
            _("Audience refresh: %(status)s.") % {"status": audience.get_status_display().lower()},
            messages.SUCCESS,
        )
        return self._back(segment)

    def export_view(self, request, object_id):
        segment = self._segment(request, object_id, write=True)
        form = ExportForm(request.POST)
        if not form.is_valid():
            for line in form_errors(form):
                self.message_user(request, gettext("Export not queued. %(line)s") % {"line": line}, messages.ERROR)
            return self._back(segment)
        try:
            export_request(
                segment=segment, by=request.user, role=roles_for(request).get(segment.workspace_id), **form.cleaned_data
            )
        except ValidationError as exc:
            errors_as_messages(self, request, exc, prefix="Export not queued. ")
        else:
            self.message_user(request, _("Export queued."), messages.SUCCESS)
        return self._back(segment)


admin.site.unregister(Segment)
admin.site.register(Segment, SegmentAudienceAdmin)
