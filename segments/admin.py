import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.admin_base import WorkspaceScopedAdmin, WorkspaceScopedForm, roles_for
from accounts.models import Workspace
from core.api import SafeJSONFormField
from core.payloads import PayloadProblem, json_loads, payload_check
from segments import services
from segments.admin_panels import BUSY, AnalyseForm, form_errors, index_panel, job_statuses, suggestion_panel
from segments.membership import current_audience
from segments.models import Segment, SegmentAnalysis
from segments.quantification import macro_segment_suggestion, segment_analysis_request
from segments.rules import MAX_TEXT
from segments.selectors import definition_estimate, definition_preview
from segments.vocabulary import SUGGESTED_FIELDS, catalogue, definition_hints, describe, value_suggestions
from segments.widgets import RuleBuilder

EXAMPLE = {"all": [{"field": "age", "op": "between", "value": [25, 34]}, {"event": "cart_abandoned", "within": "P1D"}]}


class SegmentForm(WorkspaceScopedForm):
    definition = SafeJSONFormField(
        required=False,
        label=gettext_lazy("Rules"),
        widget=RuleBuilder(count=True),
    )

    class Meta:
        model = Segment
        fields = ["workspace", "name", "description", "kind", "definition", "refresh_every"]
        labels = {
            "workspace": gettext_lazy("Workspace"),
            "name": gettext_lazy("Name"),
            "description": gettext_lazy("Description"),
            "kind": gettext_lazy("Kind"),
            "refresh_every": gettext_lazy("Refresh every"),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["definition"].widget.workspace_id = getattr(self.instance, "workspace_id", None)
        self.fields["definition"].help_text = format_html(
            _("Build the rules by choosing criteria; under “advanced” they are JSON, e.g. <code>{}</code>"),
            json.dumps(EXAMPLE),
        )

    def clean(self):
        cleaned = super().clean()
        workspace = cleaned.get("workspace") or getattr(self.instance, "workspace", None)
        definition = cleaned.get("definition")
        if workspace is None or self.errors:
            return cleaned
        if cleaned.get("kind") == Segment.Kind.DYNAMIC and definition is None:
            self.add_error("definition", gettext("A dynamic segment needs rules."))
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
    list_display = ["name", "kind", "refresh_every", "workspace"]
    list_filter = ["workspace", "kind"]
    search_fields = ["name", "description"]
    list_select_related = ["workspace"]
    readonly_fields = ["depends_on_list", "owner", "created_at", "updated_at", "index_table", "macro_suggestion"]

    def get_readonly_fields(self, request, obj=None):
        # A segment stays in its workspace: its rules and audience only mean something there.
        return [*self.readonly_fields, "workspace"] if obj is not None else self.readonly_fields

    def get_fieldsets(self, request, obj=None):
        rules = (None, {"fields": ["workspace", "name", "description", "kind", "definition", "refresh_every"]})
        if obj is None:
            return [rules]
        return [
            rules,
            (gettext_lazy("About"), {"fields": ["depends_on_list", "owner", "created_at", "updated_at"]}),
            (gettext_lazy("Over-represented criteria"), {"fields": ["index_table", "macro_suggestion"]}),
        ]

    @admin.display(description=gettext_lazy("Index table"))
    def index_table(self, obj):
        return index_panel(obj, can_write=getattr(obj, "_can_write", False))

    @admin.display(description=gettext_lazy("Suggested macro-segment"))
    def macro_suggestion(self, obj):
        analysis = SegmentAnalysis.objects.filter(segment=obj, status=SegmentAnalysis.Status.READY).first()
        suggestion = macro_segment_suggestion(analysis=analysis) if analysis else None
        return suggestion_panel(obj, suggestion, can_write=getattr(obj, "_can_write", False))

    def get_object(self, request, object_id, from_field=None):
        # The panels' buttons depend on the user's role in the segment's workspace; the
        # object is fetched once per request, so it carries the answer to the panels.
        segment = super().get_object(request, object_id, from_field)
        if segment is not None:
            segment._can_write = self.has_change_permission(request, segment)
        return segment

    @admin.display(description=gettext_lazy("Uses"))
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

    def get_urls(self):
        def route(pattern, function, name):
            return path(pattern, self.admin_site.admin_view(function), name=f"segments_segment_{name}")

        urls = [
            route("preview/", self.preview_view, "preview"),
            route("catalogue/", self.catalogue_view, "catalogue"),
            route("values/", self.values_view, "values"),
            route("<path:object_id>/status/", self.status_view, "status"),
            route("<path:object_id>/analyse/", require_POST(self.analyse_view), "analyse"),
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

    def job_statuses(self, segment: Segment) -> dict[str, str]:
        """The jobs the page polls while they run (the audiences admin adds its own)."""
        return job_statuses(segment)

    def status_view(self, request, object_id):
        jobs = self.job_statuses(self._segment(request, object_id, write=False))
        return JsonResponse({"jobs": jobs, "busy": any(status in BUSY for status in jobs.values())})

    def analyse_view(self, request, object_id):
        segment = self._segment(request, object_id, write=True)
        form = AnalyseForm(request.POST)
        if current_audience(segment=segment) is None:
            self.message_user(request, gettext("Compute the audience first."), messages.ERROR)
        elif not form.is_valid():
            for line in form_errors(form):
                self.message_user(request, gettext("Index table not queued. %(line)s") % {"line": line}, messages.ERROR)
        else:
            segment_analysis_request(segment=segment, **form.cleaned_data)
            self.message_user(request, gettext("Index table queued."), messages.SUCCESS)
        return self._back(segment, "#cible-index")

    def suggestion_create_view(self, request, object_id):
        segment = self._segment(request, object_id, write=True)
        analysis = SegmentAnalysis.objects.filter(segment=segment, status=SegmentAnalysis.Status.READY).first()
        suggestion = macro_segment_suggestion(analysis=analysis) if analysis else None
        if not suggestion or suggestion["definition"] is None:
            self.message_user(request, gettext("There is no suggestion to create."), messages.ERROR)
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
        self.message_user(
            request, gettext("Created the draft segment %(name)s.") % {"name": created.name}, messages.SUCCESS
        )
        return self._back(created)

    def _workspace(self, request, value) -> Workspace:
        """A workspace the user belongs to (ValueError, TypeError or DoesNotExist otherwise)."""
        return Workspace.objects.get(pk=int(value), pk__in=list(roles_for(request)))

    def catalogue_view(self, request):
        """What the segment builder offers in a workspace, in the user's language."""
        try:
            workspace = self._workspace(request, request.GET.get("workspace"))
        except (ValueError, TypeError, Workspace.DoesNotExist):
            return JsonResponse({"errors": [_("Choose a workspace first.")]}, status=400)
        return JsonResponse(catalogue(workspace=workspace))

    def values_view(self, request):
        """Type-ahead: values of a profile field in the workspace that match what was typed."""
        try:
            workspace = self._workspace(request, request.GET.get("workspace"))
        except (ValueError, TypeError, Workspace.DoesNotExist):
            return JsonResponse({"errors": [_("Choose a workspace first.")]}, status=400)
        field = request.GET.get("field", "")
        if field not in SUGGESTED_FIELDS:
            return JsonResponse({"errors": [_("No suggestions for this field.")]}, status=400)
        typed = request.GET.get("q", "")[:MAX_TEXT]
        return JsonResponse({"values": value_suggestions(workspace=workspace, field=field, query=typed)})

    def preview_view(self, request):
        """Live count for the editor: validates the rules so far, reads them back as a sentence and
        counts them; with "mode": "estimate", from the fixed sample of the base (quick) instead."""
        if request.method != "POST":
            return JsonResponse({"error": "POST the workspace and the definition."}, status=405)
        try:
            payload = json_loads(request.body)
            payload_check(payload)
            workspace = self._workspace(request, payload.get("workspace"))
            definition = payload.get("definition")
            services.definition_check(workspace=workspace, definition=definition)
            answer: dict = {
                "sentence": describe(workspace=workspace, definition=definition),
                "hints": definition_hints(workspace=workspace, definition=definition),
            }
            estimate = (
                definition_estimate(workspace=workspace, definition=definition)
                if payload.get("mode") == "estimate" and definition is not None
                else None
            )
            if estimate is not None:
                answer.update(estimate, estimate=True)
                return JsonResponse(answer)
            preview = definition_preview(workspace=workspace, definition=definition, sample=5)
        except (ValueError, TypeError, RecursionError, Workspace.DoesNotExist):
            return JsonResponse({"errors": [_("Choose a workspace and write the rules.")]}, status=400)
        except PayloadProblem as problem:
            return JsonResponse({"errors": [f"{problem.path}: {problem.message}"]}, status=400)
        except ValidationError as exc:
            return JsonResponse({"errors": exc.message_dict.get("definition", exc.messages)}, status=400)
        answer.update(
            estimate=False,
            count=preview["count"],
            base=preview["base"],
            share=preview["share"],
            sample=[str(p) for p in preview["sample"]],
        )
        return JsonResponse(answer)

    def render_change_form(self, request, context, *args, **kwargs):
        context["preview_url"] = reverse("admin:segments_segment_preview")
        if context.get("original") is not None:
            context["status_url"] = reverse("admin:segments_segment_status", args=[context["original"].pk])
        return super().render_change_form(request, context, *args, **kwargs)
