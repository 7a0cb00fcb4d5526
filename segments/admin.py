import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from accounts.admin_base import WorkspaceScopedAdmin, WorkspaceScopedForm, admin_datetime, errors_as_messages, roles_for
from accounts.roles import Capability, role_can
from audiences.exports import export_request
from audiences.models import AudienceRun
from audiences.services import audience_refresh_request
from segments import services
from segments.admin_panels import (
    AnalyseForm,
    ExportForm,
    exports_panel,
    form_errors,
    index_panel,
    job_statuses,
    suggestion_panel,
)
from segments.models import Segment, SegmentAnalysis
from segments.quantification import macro_segment_suggestion, segment_analysis_request
from segments.selectors import definition_preview

EXAMPLE = {"all": [{"field": "age", "op": "between", "value": [25, 34]}, {"event": "cart_abandoned", "within": "P1D"}]}


class SegmentForm(WorkspaceScopedForm):
    definition = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 14, "cols": 90, "class": "vLargeTextField cible-definition"}),
        help_text=format_html("The rules as JSON, e.g. <code>{}</code>", json.dumps(EXAMPLE)),
    )

    class Meta:
        model = Segment
        fields = ["workspace", "name", "description", "kind", "definition", "refresh_every"]

    def clean(self):
        cleaned = super().clean()
        workspace = cleaned.get("workspace") or getattr(self.instance, "workspace", None)
        definition = cleaned.get("definition")
        if workspace is None or self.errors:
            return cleaned
        if cleaned.get("kind") == Segment.Kind.DYNAMIC and definition is None:
            self.add_error("definition", "A dynamic segment needs rules.")
        elif definition is not None:
            try:
                services.definition_check(workspace=workspace, definition=definition, segment=self.instance)
            except ValidationError as exc:
                for message in exc.message_dict.get("definition", exc.messages):
                    self.add_error("definition", message)
        return cleaned


@admin.register(Segment)
class SegmentAdmin(WorkspaceScopedAdmin):
    form = SegmentForm
    change_form_template = "admin/segments/segment/change_form.html"
    list_display = ["name", "kind", "audience_status", "audience_size", "computed", "refresh_every", "workspace"]
    list_filter = ["workspace", "kind", "audience__status"]
    search_fields = ["name", "description"]
    list_select_related = ["audience", "workspace"]
    readonly_fields = [
        "audience_summary",
        "size_chart",
        "history",
        "depends_on_list",
        "owner",
        "created_at",
        "updated_at",
        "index_table",
        "macro_suggestion",
        "exports",
    ]
    actions = ["refresh_audiences"]

    def get_readonly_fields(self, request, obj=None):
        # A segment stays in its workspace: its rules and audience only mean something there.
        return [*self.readonly_fields, "workspace"] if obj is not None else self.readonly_fields

    def get_fieldsets(self, request, obj=None):
        rules = (None, {"fields": ["workspace", "name", "description", "kind", "definition", "refresh_every"]})
        if obj is None:
            return [rules]
        return [
            rules,
            (
                "Audience",
                {
                    "fields": [
                        "audience_summary",
                        "size_chart",
                        "history",
                        "depends_on_list",
                        "owner",
                        "created_at",
                        "updated_at",
                    ]
                },
            ),
            ("Over-represented criteria", {"fields": ["index_table", "macro_suggestion"]}),
            ("Exports", {"fields": ["exports"]}),
        ]

    @admin.display(description="Status", ordering="audience__status")
    def audience_status(self, obj):
        return obj.audience.get_status_display()

    @admin.display(description="Size", ordering="audience__size")
    def audience_size(self, obj):
        return obj.audience.size if obj.audience.current_version else "-"

    @admin.display(description="Computed", ordering="audience__computed_at")
    def computed(self, obj):
        return admin_datetime(obj.audience.computed_at)

    @admin.display(description="Audience")
    def audience_summary(self, obj):
        audience = obj.audience
        contactable = format_html_join(", ", "{}: {}", sorted(audience.contactable.items())) or "-"
        refresh = (
            format_html(
                ' <button type="submit" class="button cible-action" name="_refresh" formaction="{}" '
                'formmethod="post" formnovalidate>Refresh now</button>',
                reverse("admin:segments_segment_refresh", args=[obj.pk]),
            )
            if getattr(obj, "_can_write", False)
            else ""
        )
        return format_html(
            '<strong class="cible-status" data-job="audience" data-status="{}">{}</strong> — version {}, {} members,'
            " computed {}{}<br>Contactable: {}",
            audience.status,
            audience.get_status_display(),
            audience.current_version,
            audience.size,
            admin_datetime(audience.computed_at),
            refresh,
            contactable,
        )

    @admin.display(description="Index table")
    def index_table(self, obj):
        return index_panel(obj, can_write=getattr(obj, "_can_write", False))

    @admin.display(description="Suggested macro-segment")
    def macro_suggestion(self, obj):
        analysis = SegmentAnalysis.objects.filter(segment=obj, status=SegmentAnalysis.Status.READY).first()
        suggestion = macro_segment_suggestion(analysis=analysis) if analysis else None
        return suggestion_panel(obj, suggestion, can_write=getattr(obj, "_can_write", False))

    @admin.display(description="Exports")
    def exports(self, obj):
        return exports_panel(obj, can_write=getattr(obj, "_can_write", False))

    def get_object(self, request, object_id, from_field=None):
        # The panels' buttons depend on the user's role in the segment's workspace; the
        # object is fetched once per request, so it carries the answer to the panels.
        segment = super().get_object(request, object_id, from_field)
        if segment is not None:
            segment._can_write = self.has_change_permission(request, segment)
        return segment

    @admin.display(description="Size over time")
    def size_chart(self, obj):
        runs = list(AudienceRun.objects.filter(audience=obj.audience, status="succeeded").order_by("-started_at")[:60])[
            ::-1
        ]
        if len(runs) < 2:
            return "Shown after two computations."
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

    @admin.display(description="Last computations")
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
            else "Never computed."
        )

    @admin.display(description="Uses")
    def depends_on_list(self, obj):
        return ", ".join(obj.depends_on.values_list("name", flat=True)) or "-"

    def save_model(self, request, obj, form, change):
        data = {
            name: form.cleaned_data[name] for name in ["name", "description", "kind", "definition", "refresh_every"]
        }
        if change:
            saved = services.segment_update(segment=obj, **data)
        else:
            saved = services.segment_create(workspace=form.cleaned_data["workspace"], owner=request.user, **data)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.segment_delete(segment=obj)

    @admin.action(description="Refresh the audiences of the selected segments")
    def refresh_audiences(self, request, queryset: QuerySet[Segment]):
        roles = roles_for(request)
        count = 0
        for segment in queryset:
            if role_can(roles.get(segment.workspace_id), Capability.WRITE_CUSTOMERS):
                audience_refresh_request(segment=segment, trigger="manual", by=request.user)
                count += 1
        self.message_user(request, f"Refresh queued for {count} segment(s).", messages.SUCCESS)

    def get_urls(self):
        def route(pattern, function, name):
            return path(pattern, self.admin_site.admin_view(function), name=f"segments_segment_{name}")

        urls = [
            route("preview/", self.preview_view, "preview"),
            route("<path:object_id>/status/", self.status_view, "status"),
            route("<path:object_id>/refresh/", require_POST(self.refresh_view), "refresh"),
            route("<path:object_id>/analyse/", require_POST(self.analyse_view), "analyse"),
            route("<path:object_id>/export/", require_POST(self.export_view), "export"),
            route("<path:object_id>/suggestion/", require_POST(self.suggestion_create_view), "suggestion_create"),
        ]
        return [*urls, *super().get_urls()]

    def _segment(self, request, object_id, *, write: bool) -> Segment:
        """The segment if the user may see it (else 404), and change it when `write` (else 403)."""
        segment = self.get_object(request, object_id)
        if segment is None:
            raise Http404("No such segment.")
        if write and not self.has_change_permission(request, segment):
            raise PermissionDenied
        return segment

    def _back(self, segment: Segment, anchor: str = "") -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:segments_segment_change", args=[segment.pk]) + anchor)

    def status_view(self, request, object_id):
        return JsonResponse(job_statuses(self._segment(request, object_id, write=False)))

    def refresh_view(self, request, object_id):
        segment = self._segment(request, object_id, write=True)
        audience = audience_refresh_request(segment=segment, trigger="manual", by=request.user)
        self.message_user(request, f"Audience refresh: {audience.get_status_display().lower()}.", messages.SUCCESS)
        return self._back(segment)

    def analyse_view(self, request, object_id):
        segment = self._segment(request, object_id, write=True)
        form = AnalyseForm(request.POST)
        if not segment.audience.current_version:
            self.message_user(request, "Compute the audience first.", messages.ERROR)
        elif not form.is_valid():
            for line in form_errors(form):
                self.message_user(request, f"Index table not queued. {line}", messages.ERROR)
        else:
            segment_analysis_request(segment=segment, **form.cleaned_data)
            self.message_user(request, "Index table queued.", messages.SUCCESS)
        return self._back(segment, "#cible-index")

    def export_view(self, request, object_id):
        segment = self._segment(request, object_id, write=True)
        form = ExportForm(request.POST)
        if not form.is_valid():
            for line in form_errors(form):
                self.message_user(request, f"Export not queued. {line}", messages.ERROR)
            return self._back(segment)
        try:
            export_request(
                segment=segment, by=request.user, role=roles_for(request).get(segment.workspace_id), **form.cleaned_data
            )
        except ValidationError as exc:
            errors_as_messages(self, request, exc, prefix="Export not queued. ")
        else:
            self.message_user(request, "Export queued.", messages.SUCCESS)
        return self._back(segment)

    def suggestion_create_view(self, request, object_id):
        segment = self._segment(request, object_id, write=True)
        analysis = SegmentAnalysis.objects.filter(segment=segment, status=SegmentAnalysis.Status.READY).first()
        suggestion = macro_segment_suggestion(analysis=analysis) if analysis else None
        if not suggestion or suggestion["definition"] is None:
            self.message_user(request, "There is no suggestion to create.", messages.ERROR)
            return self._back(segment)
        taken = set(Segment.objects.filter(workspace_id=segment.workspace_id).values_list("name", flat=True))
        base = f"{segment.name} — macro"[:110]
        name = next(n for n in (base, *(f"{base} {i}" for i in range(2, 1000))) if n not in taken)
        created = services.segment_create(
            workspace=segment.workspace,
            owner=request.user,
            name=name,
            description=f"Suggested from the over-represented criteria of {segment.name}.",
            kind=Segment.Kind.DYNAMIC,
            definition=suggestion["definition"],
        )
        self.message_user(request, f"Created the draft segment {created.name}.", messages.SUCCESS)
        return self._back(created)

    def preview_view(self, request):
        """Live count for the editor: validates the rules typed so far and counts them."""
        from accounts.models import Workspace

        if request.method != "POST":
            return JsonResponse({"error": "POST the workspace and the definition."}, status=405)
        try:
            payload = json.loads(request.body)
            workspace = Workspace.objects.get(pk=int(payload.get("workspace")), pk__in=list(roles_for(request)))
            definition = payload.get("definition")
            services.definition_check(workspace=workspace, definition=definition)
        except (ValueError, TypeError, Workspace.DoesNotExist):
            return JsonResponse({"errors": ["Choose a workspace and write the rules as JSON."]}, status=400)
        except ValidationError as exc:
            return JsonResponse({"errors": exc.message_dict.get("definition", exc.messages)}, status=400)
        preview = definition_preview(workspace=workspace, definition=definition, sample=5)
        return JsonResponse(
            {
                "count": preview["count"],
                "base": preview["base"],
                "share": preview["share"],
                "sample": [str(p) for p in preview["sample"]],
            }
        )

    def render_change_form(self, request, context, *args, **kwargs):
        context["preview_url"] = reverse("admin:segments_segment_preview")
        if context.get("original") is not None:
            context["status_url"] = reverse("admin:segments_segment_status", args=[context["original"].pk])
        return super().render_change_form(request, context, *args, **kwargs)
