from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _

from accounts.admin_base import ReadOnlyScopedAdmin, WorkspaceScopedAdmin, roles_for, workspace_ids_with
from accounts.models import Workspace
from accounts.roles import Capability
from campaigns.admin import CampaignAdmin
from campaigns.admin.setup_panels import page_forecast
from campaigns.experiments import experiment_results
from campaigns.models import Campaign
from core.workers import QueuedJobAdminMixin
from reporting.dashboards import campaign_dashboard, parse_days, workspace_dashboard
from reporting.estimates import campaign_cost_estimate
from reporting.models import AttributionSettings, DeliveryFigure, PerformanceDashboard, ReportJob, RollupState
from reporting.reports import ReportQuery, report_file_response, report_job_create
from reporting.tasks import rollup_task


@admin.register(PerformanceDashboard)
class PerformanceDashboardAdmin(ReadOnlyScopedAdmin):
    """The workspace's performance at a glance: campaigns against budget, KPIs per channel and segment."""

    def changelist_view(self, request, extra_context=None):
        workspaces = Workspace.objects.filter(pk__in=list(roles_for(request))).order_by("name")
        if request.user.is_superuser and not workspaces:
            workspaces = Workspace.objects.order_by("name")
        slug = request.POST.get("workspace") or request.GET.get("workspace")
        workspace = (workspaces.filter(slug=slug).first() if slug else None) or workspaces.first()
        if workspace is None:
            raise Http404("You are a member of no workspace.")
        can_write = request.user.is_superuser or workspace.pk in workspace_ids_with(request, Capability.RUN_CAMPAIGNS)
        here = f"{reverse('admin:reporting_performancedashboard_changelist')}?workspace={workspace.slug}"
        if request.method == "POST":
            if not can_write:
                raise PermissionDenied
            if request.POST.get("refresh"):
                rollup_task.delay_on_commit(workspace_id=workspace.pk)
                self.message_user(request, gettext("The figures are being refreshed."), messages.SUCCESS)
            elif request.POST.get("report"):
                query = ReportQuery(workspace=workspace, group_by=["campaign", "channel", "day"])
                report_job_create(query=query, user=request.user)
                self.message_user(request, gettext("The report is being generated."), messages.SUCCESS)
            return HttpResponseRedirect(here)
        days = parse_days(request.GET.get("days"))
        basis = "reported" if request.GET.get("basis") == "reported" else "attributed"
        context = {
            **self.admin_site.each_context(request),
            **workspace_dashboard(workspace=workspace, days=days, basis=basis),
            "workspaces": workspaces,
            "title": "Performance dashboard",
            "can_write": can_write,
            "rollup": RollupState.objects.filter(workspace=workspace).first(),
            "jobs": ReportJob.objects.filter(workspace=workspace)[:10],
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/reporting/workspace_dashboard.html", context)


@admin.register(ReportJob)
class ReportJobAdmin(QueuedJobAdminMixin, ReadOnlyScopedAdmin):
    list_display = ["created_at", "status_shown", "rows", "requested_by", "download", "workspace"]
    list_filter = ["status", "workspace"]
    list_select_related = ["requested_by", "workspace"]

    @admin.display(description=gettext_lazy("File"))
    def download(self, obj):
        if obj.status != ReportJob.Status.DONE:
            return "-"
        return format_html('<a href="{}">download</a>', reverse("admin:reporting_reportjob_download", args=[obj.pk]))

    def get_urls(self):
        route = path(
            "<path:object_id>/download/",
            self.admin_site.admin_view(self.download_view),
            name="reporting_reportjob_download",
        )
        return [route, *super().get_urls()]

    def download_view(self, request, object_id):
        job = self.get_object(request, object_id)
        if job is None:
            raise Http404("No such report.")
        return report_file_response(job=job)


@admin.register(DeliveryFigure)
class DeliveryFigureAdmin(ReadOnlyScopedAdmin):
    list_display = ["day", "campaign", "target", "channel", "source", "impressions", "clicks", "spend", "revision"]
    list_filter = ["channel", "source", "workspace"]
    search_fields = ["campaign__name"]
    list_select_related = ["campaign", "target", "target__segment"]
    date_hierarchy = "day"


@admin.register(AttributionSettings)
class AttributionSettingsAdmin(WorkspaceScopedAdmin):
    write_capability = Capability.RUN_CAMPAIGNS
    list_display = ["workspace", "click_window", "view_window", "updated_at"]


class CampaignPerformanceAdmin(CampaignAdmin):
    """The campaign page with its performance dashboard: spend against budget and pacing, KPIs per
    segment and channel. Optimisation extends it with the reallocation and the rules."""

    readonly_fields = [*CampaignAdmin.readonly_fields, "performance_link", "cost_estimate"]
    performance_template = "admin/reporting/campaign_performance.html"

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        (title, options), *rest = fieldsets
        fields = list(options["fields"])
        fields.insert(fields.index("spend_summary") + 1, "performance_link")
        rest = [
            (name, {**opts, "fields": [*opts["fields"], "cost_estimate"]})
            if "setup" in opts["fields"]
            else (name, opts)
            for name, opts in rest
        ]
        return [(title, {**options, "fields": fields}), *rest]

    @admin.display(description=gettext_lazy("Estimated cost"))
    def cost_estimate(self, obj):
        estimate = campaign_cost_estimate(campaign=obj, forecast=page_forecast(obj))
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    row["channel"],
                    row["messages"],
                    "-" if row["cpm"] is None else f"{row['cpm']} {obj.currency}",
                    "-" if row["cost"] is None else f"{row['cost']} {obj.currency}",
                )
                for row in estimate["channels"]
            ),
        )
        return format_html(
            '<table class="cible-kpis" id="cible-cost"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>'
            "<tbody>{}</tbody></table><p>{}</p>",
            _("Channel"),
            _("Messages"),
            _("Cost per thousand, last 90 days"),
            _("Estimated cost"),
            rows,
            _(
                "At the cost per thousand this workspace paid on each channel over the last 90 days; - where it has no figures yet."
            ),
        )

    @admin.display(description=gettext_lazy("Performance"))
    def performance_link(self, obj):
        if obj.pk is None:
            return "-"
        return format_html(
            '<a id="cible-performance-link" href="{}">{}</a>',
            reverse("admin:campaigns_campaign_performance", args=[obj.pk]),
            _("Dashboard: spend against budget, KPIs per segment and channel, what the campaign caused"),
        )

    def get_urls(self):
        view = self.admin_site.admin_view(self.performance_view)
        return [
            path("<path:object_id>/performance/", view, name="campaigns_campaign_performance"),
            *super().get_urls(),
        ]

    def performance_context(self, campaign: Campaign, *, basis: str, query=None) -> dict:
        return self.with_experiment(campaign, campaign_dashboard(campaign=campaign, basis=basis))

    @staticmethod
    def with_experiment(campaign: Campaign, context: dict) -> dict:
        """The experiment's results too, when the campaign has a control group or an A/B split."""
        if campaign.holdout_percent or campaign.targets.filter(split_weight__isnull=False).exists():
            context["experiment"] = experiment_results(campaign=campaign)
        return context

    def performance_view(self, request, object_id):
        campaign = self.get_object(request, object_id)
        if campaign is None:
            raise Http404("No such campaign.")
        basis = "reported" if request.GET.get("basis") == "reported" else "attributed"
        context = {
            **self.admin_site.each_context(request),
            **self.performance_context(campaign, basis=basis, query=request.GET),
            "title": f"Performance: {campaign.name}",
            "can_write": campaign._can_write,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, self.performance_template, context)


admin.site.unregister(Campaign)
admin.site.register(Campaign, CampaignPerformanceAdmin)
