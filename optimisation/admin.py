"""Automated rules in the admin, and the campaign page's performance dashboard with its
budget reallocation (reporting's figures, acted on here)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_POST

from accounts.admin_base import (
    ReadOnlyScopedAdmin,
    WorkspaceScopedAdmin,
    WorkspaceScopedForm,
    admin_datetime,
)
from accounts.roles import Capability
from campaigns.models import Campaign
from optimisation import rules
from optimisation.dashboards import campaign_dashboard
from optimisation.models import RULE_ACTION_FIELDS, RULE_CONDITION_FIELDS, RULE_FIELDS, Rule, RuleEvaluation
from optimisation.reallocation import reallocation_apply
from reporting.admin import CampaignPerformanceAdmin
from segments.widgets import RowsEditor


class CampaignResultsAdmin(CampaignPerformanceAdmin):
    """The campaign page and its performance dashboard, with the budget reallocation and the rules."""

    performance_template = "admin/optimisation/campaign_performance.html"

    def get_urls(self):
        view = self.admin_site.admin_view(require_POST(self.reallocate_view))
        return [
            path("<path:object_id>/reallocate/", view, name="campaigns_campaign_reallocate"),
            *super().get_urls(),
        ]

    def performance_context(self, campaign: Campaign, *, basis: str, query=None) -> dict:
        metric = "incremental_roas" if query is not None and query.get("metric") == "incremental_roas" else "roas"
        return self.with_experiment(campaign, campaign_dashboard(campaign=campaign, basis=basis, metric=metric))

    def reallocate_view(self, request, object_id):
        campaign = self._campaign(request, object_id)
        basis = "reported" if request.POST.get("basis") == "reported" else "attributed"
        metric = "incremental_roas" if request.POST.get("metric") == "incremental_roas" else "roas"
        try:
            plan = reallocation_apply(
                campaign=campaign,
                actor=request.user,
                source="admin",
                reason=request.POST.get("reason", ""),
                basis=basis,
                metric=metric,
            )
        except ValidationError as exc:
            self.message_user(request, "Not reallocated. " + " ".join(exc.messages), messages.ERROR)
        else:
            self.message_user(
                request,
                gettext("Budget shares moved for %(value)s target(s).") % {"value": plan["moves"]},
                messages.SUCCESS,
            )
        return HttpResponseRedirect(
            reverse("admin:campaigns_campaign_performance", args=[campaign.pk]) + f"?basis={basis}&metric={metric}"
        )


admin.site.unregister(Campaign)
admin.site.register(Campaign, CampaignResultsAdmin)


KPI_LABELS = {
    "roas": "ROAS",
    "cpa": "CPA",
    "ctr": "CTR",
    "cpm": "CPM",
    "cpc": "CPC",
    "cvr": gettext_lazy("Conversion rate"),
    "frequency": gettext_lazy("Frequency"),
    "uplift": gettext_lazy("Uplift against the control group"),
    "incremental_conversions": gettext_lazy("Incremental conversions"),
    "incremental_revenue": gettext_lazy("Incremental revenue"),
    "incremental_roas": gettext_lazy("Incremental ROAS"),
    "impressions": gettext_lazy("Impressions"),
    "clicks": gettext_lazy("Clicks"),
    "spend": gettext_lazy("Spend"),
    "conversions": gettext_lazy("Conversions"),
    "revenue": gettext_lazy("Revenue"),
    "sends": gettext_lazy("Sends"),
    "reach": gettext_lazy("Reach"),
}
OPERATOR_LABELS = {
    "lt": gettext_lazy("is below"),
    "lte": gettext_lazy("is at most"),
    "gt": gettext_lazy("is above"),
    "gte": gettext_lazy("is at least"),
    "eq": gettext_lazy("equals"),
}


def conditions_editor() -> RowsEditor:
    return RowsEditor(
        columns=[
            {
                "name": "kpi",
                "label": gettext_lazy("Figure"),
                "choices": [(k, KPI_LABELS.get(k, k)) for k in rules.KPIS + rules.SUMS],
            },
            {"name": "operator", "label": gettext_lazy("Condition"), "choices": list(OPERATOR_LABELS.items())},
            {"name": "threshold", "label": gettext_lazy("Threshold"), "type": "text"},
            {"name": "days", "label": gettext_lazy("Over the last (days)"), "type": "integer", "default": 7},
        ]
    )


class RuleForm(WorkspaceScopedForm):
    notify_url = forms.URLField(required=False, assume_scheme="https", max_length=500)

    class Meta:
        model = Rule
        fields = ["workspace", *RULE_FIELDS]
        widgets = {"notify_secret": forms.PasswordInput(render_value=True), "conditions": conditions_editor()}

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        probe = Rule(**{name: value for name, value in cleaned.items() if name in self.Meta.fields})
        try:
            rules.rule_check(rule=probe)
        except ValidationError as exc:
            for field, problems in exc.message_dict.items():
                name = field if field in self.fields else None
                for problem in problems:
                    self.add_error(name, f"{field}: {problem}" if name is None else problem)
        else:
            cleaned["conditions"] = probe.conditions
        return cleaned


@admin.register(Rule)
class RuleAdmin(WorkspaceScopedAdmin):
    """Automated rules, with what each would do now and its history."""

    form = RuleForm
    write_capability = Capability.RUN_CAMPAIGNS
    list_display = ["name", "campaign", "action", "schedule", "enabled", "last_run_at", "next_run_at", "workspace"]
    list_filter = ["enabled", "action", "schedule", "workspace"]
    search_fields = ["name"]
    list_select_related = ["campaign", "workspace"]
    readonly_fields = ["preview", "run_button", "history"]

    def get_fieldsets(self, request, obj=None):
        sets = [
            (None, {"fields": ["workspace", "campaign", "name", "enabled"]}),
            (gettext_lazy("When"), {"fields": RULE_CONDITION_FIELDS}),
            (gettext_lazy("Then"), {"fields": RULE_ACTION_FIELDS}),
        ]
        if obj is not None:
            sets.append((gettext_lazy("Now and before"), {"fields": ["preview", "run_button", "history"]}))
        return sets

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description=gettext_lazy("What it would do now"))
    def preview(self, obj):
        rows = rules.rule_preview(rule=obj)
        if not rows:
            return "No campaign to look at."
        return format_html_join(
            "",
            '<p class="cible-rule-preview" data-campaign="{}"><strong>{}</strong>: {} ({})</p>',
            (
                (
                    row["campaign"],
                    row["campaign_name"],
                    "would " + row["plan"]
                    if row["would_act"]
                    else ("not enough data" if row["guarded"] else "would do nothing"),
                    ", ".join(f"{c['kpi']} = {c['value']}" for c in row["conditions"]),
                )
                for row in rows
            ),
        )

    @admin.display(description=gettext_lazy("Run"))
    def run_button(self, obj):
        return format_html(
            '<button type="submit" class="button" id="cible-run-rule" formaction="{}" formmethod="post" '
            "formnovalidate>Run now</button>",
            reverse("admin:optimisation_rule_run", args=[obj.pk]),
        )

    @admin.display(description=gettext_lazy("History"))
    def history(self, obj):
        evaluations = obj.evaluations.select_related("campaign")[:20]
        if not evaluations:
            return "Not evaluated yet."
        return format_html(
            '<table id="cible-rule-history"><tr><th>When</th><th>Campaign</th><th>Outcome</th><th>Detail</th></tr>{}'
            "</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                ((admin_datetime(e.at), e.campaign, e.get_outcome_display(), e.detail) for e in evaluations),
            ),
        )

    def get_urls(self):
        run = path(
            "<path:object_id>/run/",
            self.admin_site.admin_view(require_POST(self.run_view)),
            name="optimisation_rule_run",
        )
        return [run, *super().get_urls()]

    def run_view(self, request, object_id):
        rule = self.get_object(request, object_id)
        if rule is None:
            raise Http404("No such rule.")
        if not self._can_write(request, rule):
            raise PermissionDenied
        evaluations = rules.rule_run(rule=rule, source="manual")
        acted = sum(1 for e in evaluations if e.outcome == RuleEvaluation.Outcome.ACTED)
        self.message_user(
            request,
            gettext("Evaluated on %(value)s campaign(s); acted on %(acted)s.")
            % {"value": len(evaluations), "acted": acted},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:optimisation_rule_change", args=[rule.pk]))


@admin.register(RuleEvaluation)
class RuleEvaluationAdmin(ReadOnlyScopedAdmin):
    workspace_path = "rule__workspace"
    list_display = ["at", "rule", "campaign", "source", "matched", "outcome", "action", "detail"]
    list_filter = ["outcome", "action", "source"]
    list_select_related = ["rule", "campaign"]
    date_hierarchy = "at"
