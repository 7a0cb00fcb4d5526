import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from accounts.admin_base import WorkspaceScopedAdmin, WorkspaceScopedForm, admin_datetime, roles_for
from accounts.roles import Capability, role_can
from audiences.models import AudienceRun
from audiences.services import audience_refresh_request
from segments import services
from segments.models import Segment
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
        return format_html(
            "<strong>{}</strong> — version {}, {} members, computed {}.<br>Contactable: {}",
            audience.get_status_display(),
            audience.current_version,
            audience.size,
            admin_datetime(audience.computed_at),
            contactable,
        )

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
        return [
            path("preview/", self.admin_site.admin_view(self.preview_view), name="segments_segment_preview"),
            *super().get_urls(),
        ]

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
        return super().render_change_form(request, context, *args, **kwargs)
