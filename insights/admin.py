"""What Cible learns, in the admin: RFM with its distribution and migration, lifetime value with its
parameters, assumption check and deciles, personas with their traits, models with their curve,
metrics and importances (and the threshold picked by reach or by precision), lookalike bands, the
features, and the jobs that compute them with their progress."""

from collections.abc import Callable
from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.views.decorators.http import require_POST

from accounts.admin_base import (
    ReadOnlyScopedAdmin,
    WorkspaceScopedAdmin,
    WorkspaceScopedForm,
    admin_datetime,
    errors_as_messages,
    errors_on_form,
    post_button,
    workspace_ids_with,
)
from accounts.models import Workspace
from accounts.roles import Capability
from core.charts import bar_chart, line_chart
from core.errors import CommonErrorCode
from core.workers import QueuedJobAdminMixin
from insights import services
from insights.clv import CORRELATION_WARNING
from insights.models import (
    ClvRun,
    FeatureSet,
    InsightJob,
    Lookalike,
    Persona,
    PersonaRun,
    PredictiveModel,
    RfmRun,
    RfmSegment,
)
from insights.rfm import reachability

LEARN = Capability.RUN_CAMPAIGNS


def _route_name(model, action: str) -> str:
    """The name of one of a model admin's views, as Django names its own (`insights_rfmrun_changelist`)."""
    return f"{model._meta.app_label}_{model._meta.model_name}_{action}"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows)
    )
    return format_html('<table class="cible-table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body)


class ComputeAdmin(ReadOnlyScopedAdmin):
    """A read-only list of results with a button that queues a new computation for a workspace."""

    write_capability = LEARN
    change_list_template = "admin/insights/compute_change_list.html"
    compute_label: ClassVar[str] = "Compute now"

    def compute_fields(self) -> list[dict[str, Any]]:
        return []

    # Each subclass queues its own computation: compute(request, workspace) -> the job queued.
    compute: Callable[[Any, Workspace], InsightJob]

    def get_urls(self):
        view = self.admin_site.admin_view(require_POST(self.compute_view))
        return [path("compute/", view, name=_route_name(self.model, "compute")), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        allowed = workspace_ids_with(request, self.write_capability)
        extra = {
            "workspaces": list(Workspace.objects.filter(pk__in=allowed).order_by("name")),
            "compute_url": reverse(f"admin:{_route_name(self.model, 'compute')}"),
            "compute_label": self.compute_label,
            "compute_fields": self.compute_fields(),
        }
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def compute_view(self, request):
        workspace = Workspace.objects.filter(pk=request.POST.get("workspace") or 0).first()
        if workspace is None or workspace.pk not in workspace_ids_with(request, self.write_capability):
            raise PermissionDenied
        try:
            job = self.compute(request, workspace)
        except ValidationError as exc:
            errors_as_messages(self, request, exc, prefix="Not queued. ")
        else:
            self.message_user(
                request,
                gettext("Queued: %(job)s. Its progress is under Insight jobs.") % {"job": job},
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse(f"admin:{_route_name(self.model, 'changelist')}"))


@admin.register(InsightJob)
class InsightJobAdmin(QueuedJobAdminMixin, ReadOnlyScopedAdmin):
    list_display = ["id", "kind", "status_shown", "progress_shown", "step", "created_at", "finished_at", "workspace"]
    list_filter = ["workspace", "kind", "status"]
    readonly_fields = ["kind", "subject_id", "params", "status_shown", "progress", "step", "error", "result"]

    @admin.display(description="Progress", ordering="progress")
    def progress_shown(self, obj):
        return format_html('<progress max="100" value="{}"></progress> {} %', obj.progress, obj.progress)


@admin.register(FeatureSet)
class FeatureSetAdmin(ComputeAdmin):
    list_display = ["workspace", "version", "as_of", "profiles", "refreshed", "full", "duration_ms"]
    readonly_fields = ["version", "as_of", "profiles", "refreshed", "full", "duration_ms", "columns"]
    exclude = ["definition", "definition_hash"]
    compute_label = "Refresh the features"

    def compute(self, request, workspace):
        return services.features_request(workspace=workspace, by=request.user)

    @admin.display(description="Features")
    def columns(self, obj):
        return _table(["Facet", "Feature", "Kind"], [[c["facet"], c["label"], c["kind"]] for c in obj.definition])


class RfmSegmentForm(WorkspaceScopedForm):
    class Meta:
        model = RfmSegment
        fields = ["name", "description", "position", "r_min", "r_max", "f_min", "f_max", "m_min", "m_max"]


@admin.register(RfmSegment)
class RfmSegmentAdmin(WorkspaceScopedAdmin):
    write_capability = LEARN
    form = RfmSegmentForm
    list_display = ["position", "name", "code", "r_range", "f_range", "m_range", "cells", "workspace"]
    list_display_links = ["name"]
    list_filter = ["workspace"]

    def has_add_permission(self, request) -> bool:
        return False  # the ten named segments are made with the first scoring; they are edited, not added

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="R")
    def r_range(self, obj):
        return f"{obj.r_min}-{obj.r_max}"

    @admin.display(description="F")
    def f_range(self, obj):
        return f"{obj.f_min}-{obj.f_max}"

    @admin.display(description="M")
    def m_range(self, obj):
        return f"{obj.m_min}-{obj.m_max}"

    @admin.display(description="Cells won (of 125)")
    def cells(self, obj):
        won = reachability(list(RfmSegment.objects.filter(workspace_id=obj.workspace_id)))
        return won.get(obj.code, 0)

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in form.changed_data}
        original = RfmSegment.objects.get(pk=obj.pk)
        try:
            services.rfm_segment_update(segment=original, **fields)
        except ValidationError as exc:
            errors_as_messages(self, request, exc, prefix="Not saved. ")
            self._refused = True

    def response_change(self, request, obj):
        if getattr(self, "_refused", False):
            self._refused = False
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)


@admin.register(RfmRun)
class RfmRunAdmin(ComputeAdmin):
    list_display = ["version", "as_of", "status", "customers", "created_at", "workspace"]
    list_filter = ["workspace", "status"]
    readonly_fields = ["as_of", "status", "customers", "distribution_chart", "migration_table", "boundaries_table"]
    exclude = ["distribution", "migration", "boundaries", "previous", "version"]
    compute_label = "Score the customers now (RFM)"

    def compute(self, request, workspace):
        return services.rfm_request(workspace=workspace, by=request.user)

    @admin.display(description="Customers by named segment")
    def distribution_chart(self, obj):
        bars = [(row["name"], row["customers"]) for row in obj.distribution]
        chart = bar_chart(name="rfm-distribution", bars=bars, caption=gettext("Customers by RFM segment"))
        rows = [
            [
                row["name"],
                row["customers"],
                f"{100 * row['share']:.1f} %",
                row["avg_recency_days"],
                row["avg_frequency"],
                row["monetary"],
            ]
            for row in obj.distribution
        ]
        return format_html(
            "{}{}", chart, _table(["Segment", "Customers", "Share", "Recency (days)", "Orders", "Spent"], rows)
        )

    @admin.display(description="Moves since the previous scoring")
    def migration_table(self, obj):
        if not obj.migration:
            return "The first scoring: nothing to compare with."
        moved = [row for row in obj.migration if row["from"] != row["to"]][:30]
        return _table(["From", "To", "Customers"], [[r["from"], r["to"], r["customers"]] for r in moved])

    @admin.display(description="What each score covers")
    def boundaries_table(self, obj):
        rows = [
            [score.upper(), row["score"], row["from"], row["to"], row["customers"]]
            for score, grades in obj.boundaries.items()
            for row in grades
        ]
        return _table(["Score", "Grade", "From", "To", "Customers"], rows)


@admin.register(ClvRun)
class ClvRunAdmin(ComputeAdmin):
    list_display = ["version", "as_of", "status", "customers", "horizon_months", "discount_rate", "workspace"]
    list_filter = ["workspace", "status"]
    readonly_fields = [
        "as_of",
        "status",
        "error",
        "customers",
        "unit",
        "horizon_months",
        "discount_rate",
        "purchase_days",
        "holdout_days",
        "parameters_table",
        "estimation",
        "assumption",
        "holdout_chart",
        "deciles_chart",
    ]
    exclude = [
        "parameters",
        "standard_errors",
        "frequency_value_correlation",
        "holdout",
        "deciles",
        "previous",
        "version",
    ]
    compute_label = "Fit and score lifetime value now"

    def compute_fields(self):
        return [
            {
                "label": "Horizon (months)",
                "widget": '<input name="horizon_months" type="number" min="1" max="120" value="12" size="4">',
            },
            {
                "label": "Monthly discount rate",
                "widget": '<input name="discount_rate" type="number" min="0" max="1" step="0.001" value="0.01" size="6">',
            },
            {
                "label": "Holdout check (days, 0 for none)",
                "widget": '<input name="holdout_days" type="number" min="0" max="3660" value="90" size="5">',
            },
        ]

    def compute(self, request, workspace):
        settings: dict[str, Any] = {}
        horizon = request.POST.get("horizon_months") or "12"
        rate = request.POST.get("discount_rate") or "0.01"
        if not (horizon.isdigit() and 1 <= int(horizon) <= 120):
            raise ValidationError(
                {
                    "horizon_months": ValidationError(
                        gettext("A whole number from 1 to 120."), code=CommonErrorCode.OUT_OF_RANGE
                    )
                }
            )
        try:
            settings["discount_rate"] = float(rate)
        except ValueError:
            settings["discount_rate"] = -1.0
        if not 0 <= settings["discount_rate"] <= 1:
            raise ValidationError(
                {"discount_rate": ValidationError(gettext("A number from 0 to 1."), code=CommonErrorCode.OUT_OF_RANGE)}
            )
        holdout = request.POST.get("holdout_days") or "90"
        if not (holdout.isdigit() and int(holdout) <= 3660):
            raise ValidationError(
                {
                    "holdout_days": ValidationError(
                        gettext("A whole number from 0 to 3660."), code=CommonErrorCode.OUT_OF_RANGE
                    )
                }
            )
        settings["holdout_days"] = int(holdout)
        return services.clv_request(workspace=workspace, by=request.user, horizon_months=int(horizon), **settings)

    @admin.display(description="Fitted parameters")
    def parameters_table(self, obj):
        if not obj.parameters:
            return "-"
        rows = []
        for key, model in (("bgnbd", "BG/NBD"), ("gamma_gamma", "Gamma-Gamma")):
            errors = (obj.standard_errors or {}).get(key, {})
            for name, value in obj.parameters.get(key, {}).items():
                error = errors.get(name)
                interval = "-" if error is None else f"{value - 1.96 * error:.4g} to {value + 1.96 * error:.4g}"
                rows.append([model, name, f"{value:.4g}", "-" if error is None else f"{error:.3g}", interval])
        return _table(["Model", "Parameter", "Estimate", "Standard error", "95 % interval"], rows)

    @admin.display(description="Holdout check")
    def holdout_chart(self, obj):
        check = obj.holdout or {}
        if not check:
            return "-"
        if "skipped" in check:
            return f"Not done: {check['skipped']}"
        bands = check["bands"]
        per_customer = lambda key: [  # noqa: E731
            round(band[key] / band["customers"], 3) if band["customers"] else None for band in bands
        ]
        chart = line_chart(
            name="clv-holdout",
            labels=[band["frequency"] for band in bands],
            series=[("Expected by BG/NBD", per_customer("expected")), ("Actual", per_customer("actual"))],
            caption=f"Purchases per customer in the {check['days']} days held out, by repeat purchases before them",
        )
        rows = [[band["frequency"], band["customers"], band["expected"], band["actual"]] for band in bands]
        rows.append(["All", check["customers"], check["expected"], check["actual"]])
        gap = (check["expected"] - check["actual"]) / check["actual"] if check["actual"] else None
        summary = (
            f"Fitted again as of {check['calibration_end'][:10]}, BG/NBD expected {check['expected']:.0f} purchases "
            f"in the {check['days']} days after; {check['actual']} were made"
            + ("." if gap is None else f" ({100 * gap:+.0f} %).")
        )
        return format_html(
            "<p>{}</p>{}{}",
            summary,
            chart,
            _table(["Repeat purchases before", "Customers", "Expected", "Actual"], rows),
        )

    @admin.display(description="Gamma-Gamma's assumption")
    def assumption(self, obj):
        corr = obj.frequency_value_correlation
        if corr is None:
            return "-"
        if abs(corr) >= CORRELATION_WARNING:
            return format_html(
                '<strong class="cible-warning">Warning: frequency and purchase value are correlated ({}); '
                "Gamma-Gamma assumes they are not, so its values are less reliable.</strong>",
                f"{corr:.2f}",
            )
        return f"Frequency and purchase value are nearly independent ({corr:.2f}), as Gamma-Gamma assumes."

    @admin.display(description="Value by decile")
    def deciles_chart(self, obj):
        if not obj.deciles:
            return "-"
        bars = [(f"D{row['decile']}", round(100 * (row["share"] or 0), 1)) for row in obj.deciles]
        chart = bar_chart(
            name="clv-deciles", bars=bars, caption=gettext("Share of total lifetime value by decile"), unit=" %"
        )
        rows = [
            [row["decile"], row["customers"], row["clv"], f"{100 * (row['share'] or 0):.1f} %"] for row in obj.deciles
        ]
        return format_html("{}{}", chart, _table(["Decile", "Customers", "Lifetime value", "Share"], rows))


@admin.register(PersonaRun)
class PersonaRunAdmin(ComputeAdmin):
    list_display = [
        "version",
        "facets",
        "k",
        "k_chosen_by",
        "silhouette",
        "stability_ari",
        "drift",
        "profiles",
        "workspace",
    ]
    list_filter = ["workspace", "status"]
    readonly_fields = [
        "facets",
        "k",
        "k_chosen_by",
        "silhouette",
        "stability_ari",
        "drift",
        "profiles",
        "shares",
        "k_table",
    ]
    exclude = ["columns", "k_scores", "previous", "version", "status", "inertia"]
    compute_label = "Cluster into personas"

    def compute_fields(self):
        facets = format_html_join("", '<option value="{}">{}</option>', PersonaRun.Facets.choices)
        return [
            {"label": "Facets", "widget": format_html('<select name="facets">{}</select>', facets)},
            {"label": "k (empty: suggested)", "widget": '<input name="k" type="number" min="2" max="20" size="3">'},
        ]

    def compute(self, request, workspace):
        facets = request.POST.get("facets") or PersonaRun.Facets.ALL
        raw_k = request.POST.get("k") or ""
        if facets not in PersonaRun.Facets.values:
            raise ValidationError(
                {"facets": ValidationError(gettext("Not a choice."), code=CommonErrorCode.INVALID_CHOICE)}
            )
        if raw_k and not (raw_k.isdigit() and 2 <= int(raw_k) <= 20):
            raise ValidationError(
                {"k": ValidationError(gettext("A whole number from 2 to 20."), code=CommonErrorCode.OUT_OF_RANGE)}
            )
        return services.personas_request(
            workspace=workspace, facets=facets, k=int(raw_k) if raw_k else None, by=request.user
        )

    @admin.display(description="Personas")
    def shares(self, obj):
        bars = [(p.name, round(100 * p.share, 1)) for p in obj.personas.order_by("number")]
        return bar_chart(name="persona-shares", bars=bars, caption=gettext("Share of the base by persona"), unit=" %")

    @admin.display(description="Choice of k")
    def k_table(self, obj):
        if not obj.k_scores:
            return "k was chosen by the user."
        return _table(["k", "Silhouette", "Inertia"], [[r["k"], r["silhouette"], r["inertia"]] for r in obj.k_scores])


class PersonaForm(WorkspaceScopedForm):
    class Meta:
        model = Persona
        fields = ["name"]


@admin.register(Persona)
class PersonaAdmin(WorkspaceScopedAdmin):
    write_capability = LEARN
    form = PersonaForm
    list_display = ["number", "name", "size", "share_shown", "active", "segment", "workspace"]
    list_filter = ["workspace", "active"]
    readonly_fields = ["number", "size", "share_shown", "segment", "active", "traits"]

    def has_add_permission(self, request) -> bool:
        return False  # personas come from a clustering

    @admin.display(description="Share", ordering="share")
    def share_shown(self, obj):
        return f"{100 * obj.share:.1f} %"

    @admin.display(description="Over-represented traits (index against the base)")
    def traits(self, obj):
        bars = [(t["label"], t["index"]) for t in obj.profile]
        return bar_chart(name="persona-traits", bars=bars, caption=f"Traits of {obj.name}") if bars else "-"

    def save_model(self, request, obj, form, change):
        try:
            services.persona_name_set(persona=Persona.objects.get(pk=obj.pk), name=form.cleaned_data["name"])
        except ValidationError as exc:
            errors_as_messages(self, request, exc, prefix="Not renamed. ")


class ModelForm(WorkspaceScopedForm):
    name = forms.CharField(max_length=120, required=False, help_text="Empty: named after its segment or horizon.")

    class Meta:
        model = PredictiveModel
        fields = ["workspace", "kind", "name", "segment", "horizon_days", "pu_correction"]


class _ObjectViews(WorkspaceScopedAdmin):
    """A change page's buttons: each posts to a view of the admin that checks the right to change the row."""

    def _row(self, request, object_id):
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        return obj

    def _back(self, obj):
        return HttpResponseRedirect(reverse(f"admin:{_route_name(self.model, 'change')}", args=[obj.pk]))

    def _route(self, name: str, view):
        view = self.admin_site.admin_view(require_POST(view))
        return path(f"<path:object_id>/{name}/", view, name=_route_name(self.model, name))

    def _url(self, obj, name: str) -> str:
        return reverse(f"admin:{_route_name(self.model, name)}", args=[obj.pk])


@admin.register(PredictiveModel)
class PredictiveModelAdmin(_ObjectViews):
    write_capability = LEARN
    form = ModelForm
    list_display = ["name", "kind", "segment", "status", "version", "auc", "trained_at", "workspace"]
    list_filter = ["workspace", "kind", "status"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "kind",
            "segment",
            "horizon_days",
            "pu_correction",
            "state",
            "metrics_table",
            "curve_chart",
            "importances_chart",
            "excluded_list",
        ]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ModelForm.Meta.fields
        return ["name", *self.get_readonly_fields(request, obj)]

    def get_urls(self):
        return [
            self._route("train", self.train_view),
            self._route("threshold", self.threshold_view),
            *super().get_urls(),
        ]

    @admin.display(description="AUC")
    def auc(self, obj):
        return obj.metrics.get("auc", "-")

    @admin.display(description="State")
    def state(self, obj):
        button = post_button(name="train", label=gettext("Train now"), url=self._url(obj, "train"))
        threshold = format_html(
            ' Pick the threshold: <label>reach at most <input name="reach" type="number" min="1"> profiles</label>'
            ' or <label>precision at least <input name="precision" type="number" min="0" max="1" step="0.01">'
            "</label> {}",
            post_button(name="threshold", label=gettext("Pick"), url=self._url(obj, "threshold")),
        )
        return format_html(
            "{} — version {}, trained {}; threshold {} {}<br>{}{}",
            obj.get_status_display(),
            obj.version,
            admin_datetime(obj.trained_at),
            obj.threshold if obj.threshold is not None else "not picked",
            format_html('<span class="errornote">{}</span>', obj.error) if obj.error else "",
            button,
            threshold if obj.curve else "",
        )

    @admin.display(description="Held-out metrics")
    def metrics_table(self, obj):
        shown = [
            k
            for k in (
                "auc",
                "brier",
                "calibration",
                "pu_correction",
                "label_frequency_c",
                "test_rows",
                "test_positives",
                "train_rows",
                "fit_seconds",
                "base_rate_test",
            )
            if k in obj.metrics
        ]
        return _table(["Metric", "Value"], [[k, obj.metrics[k]] for k in shown]) if shown else "Not trained yet."

    @admin.display(description="Precision and reach by threshold")
    def curve_chart(self, obj):
        if not obj.curve:
            return "-"
        labels = [str(r["threshold"]) for r in obj.curve]
        chart = line_chart(
            name="model-curve",
            labels=labels,
            series=[
                (gettext("Precision"), [r["precision"] for r in obj.curve]),
                (gettext("Recall"), [r["recall"] for r in obj.curve]),
            ],
            caption=gettext("Precision and recall on held-out profiles, by threshold"),
        )
        rows = [[r["threshold"], r["reach"], r["precision"], r["recall"]] for r in obj.curve]
        return format_html("{}{}", chart, _table(["Threshold", "Reach", "Precision", "Recall"], rows))

    @admin.display(description="What the model reads most")
    def importances_chart(self, obj):
        bars = [(row["label"], row["importance"]) for row in obj.importances]
        return (
            bar_chart(name="model-importances", bars=bars, caption=gettext("Permutation importance (AUC lost)"))
            if bars
            else "-"
        )

    @admin.display(description="Features left out")
    def excluded_list(self, obj):
        return _table(["Feature", "Why"], [[r["label"], r["why"]] for r in obj.excluded]) if obj.excluded else "-"

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        fields = {name: form.cleaned_data[name] for name in ModelForm.Meta.fields if name != "workspace"}
        model, _ = services.model_create(workspace=form.cleaned_data["workspace"], by=request.user, **fields)
        obj.pk = model.pk

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)

        class Checked(form):
            def clean(self):
                cleaned = super().clean()
                if self.instance.pk is None and not self.errors:
                    try:
                        services.model_check(
                            workspace=cleaned.get("workspace"),
                            **{name: cleaned.get(name) for name in ("kind", "segment", "horizon_days")},
                        )
                    except ValidationError as exc:
                        errors_on_form(self, exc)
                return cleaned

        return Checked

    def train_view(self, request, object_id):
        model = self._row(request, object_id)
        try:
            services.model_train_request(model=model, by=request.user)
        except ValidationError as exc:
            errors_as_messages(self, request, exc, prefix="Not queued. ")
        else:
            self.message_user(request, gettext("Training queued."), messages.SUCCESS)
        return self._back(model)

    def threshold_view(self, request, object_id):
        model = self._row(request, object_id)
        raw = {k: request.POST.get(k, "").strip() for k in ("reach", "precision")}
        try:
            if bool(raw["reach"]) == bool(raw["precision"]):
                raise ValidationError(
                    {
                        "reach": ValidationError(
                            gettext("Give either a reach or a precision."), code=CommonErrorCode.INVALID
                        )
                    }
                )
            chosen = services.model_threshold_pick(
                model=model,
                reach=int(raw["reach"]) if raw["reach"] else None,
                precision=float(raw["precision"]) if raw["precision"] else None,
            )
        except ValueError:
            self.message_user(
                request,
                gettext("Not picked. Give a whole number of profiles or a precision from 0 to 1."),
                messages.ERROR,
            )
        except ValidationError as exc:
            errors_as_messages(self, request, exc, prefix="Not picked. ")
        else:
            self.message_user(
                request,
                gettext("Threshold %(value)s: %(value2)s profiles, precision %(value3)s.")
                % {"value": chosen["threshold"], "value2": chosen["reach"], "value3": chosen["precision"]},
                messages.SUCCESS,
            )
        return self._back(model)


class LookalikeForm(WorkspaceScopedForm):
    class Meta:
        model = Lookalike
        fields = ["workspace", "seed", "purpose", "channel"]


@admin.register(Lookalike)
class LookalikeAdmin(_ObjectViews):
    write_capability = LEARN
    form = LookalikeForm
    list_display = ["__str__", "status", "version", "eligible", "computed_at", "workspace"]
    list_filter = ["workspace", "status"]

    def get_fields(self, request, obj=None):
        return LookalikeForm.Meta.fields if obj is None else ["state", "bands_table", "evaluation_chart"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["state", "bands_table", "evaluation_chart"]

    def has_change_permission(self, request, obj=None) -> bool:
        return (
            False
            if obj is not None and request.method == "POST" and not request.path.endswith("/refresh/")
            else super().has_change_permission(request, obj)
        )

    def get_urls(self):
        return [self._route("refresh", self.refresh_view), *super().get_urls()]

    @admin.display(description="State")
    def state(self, obj):
        return format_html(
            "{} — version {}, {} eligible profiles, computed {} {}<br>{}",
            obj.get_status_display(),
            obj.version,
            obj.eligible,
            admin_datetime(obj.computed_at),
            format_html('<span class="errornote">{}</span>', obj.error) if obj.error else "",
            post_button(name="refresh", label=gettext("Rank again now"), url=self._url(obj, "refresh")),
        )

    @admin.display(description="Bands (each a segment)")
    def bands_table(self, obj):
        rows = [
            [
                f"{band['band']} %",
                band["size"],
                format_html(
                    '<a href="{}">segment {}</a>',
                    reverse("admin:segments_segment_change", args=[band["segment"]]),
                    band["segment"],
                ),
            ]
            for band in obj.bands
        ]
        return _table(["Band", "Profiles", "Segment"], rows) if rows else "-"

    @admin.display(description="Held-out seed members recovered, and precision, by band")
    def evaluation_chart(self, obj):
        if not obj.evaluation:
            return "-"
        return line_chart(
            name="lookalike-evaluation",
            labels=[f"{row['band']} %" for row in obj.evaluation],
            series=[
                (gettext("Recovered"), [row["recovered"] for row in obj.evaluation]),
                (gettext("Precision"), [row["precision"] for row in obj.evaluation]),
            ],
            caption=gettext("Held-out seed members by band"),
        )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        lookalike, _ = services.lookalike_create(
            workspace=data["workspace"],
            seed=data["seed"],
            purpose=data["purpose"],
            channel=data["channel"],
            by=request.user,
        )
        obj.pk = lookalike.pk

    def refresh_view(self, request, object_id):
        lookalike = self._row(request, object_id)
        services.lookalike_refresh_request(lookalike=lookalike, by=request.user)
        self.message_user(request, gettext("Ranking queued."), messages.SUCCESS)
        return self._back(lookalike)
