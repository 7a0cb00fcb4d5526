"""Cible's admin site: its own name, and the lists grouped by the marketer's journey.

The sidebar and the home page read Know, Segment, Activate, Measure, Protect, then Settings and the
technical lists (hand-offs, touches, schedules...) grouped apart at the end. Each list keeps its own
permission checks: a group shows only the lists the user may see.
"""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

JOURNEY = [
    (
        "know",
        pgettext_lazy("journey", "Know"),
        {
            "customers.Profile": _("Customers and prospects"),
            "customers.Event": _("Events"),
            "customers.Order": _("Orders"),
            "customers.SurveyResponse": _("Survey answers"),
            "insights.RfmSegment": _("RFM segments"),
            "insights.Persona": _("Personas"),
            "insights.ClvRun": _("Lifetime value"),
            "insights.PredictiveModel": _("Predictive models"),
            "insights.Lookalike": _("Lookalikes"),
            "campaigns.ChannelPreference": _("Channel preferences"),
        },
    ),
    (
        "segment",
        pgettext_lazy("journey", "Segment"),
        {"segments.Segment": _("Segments"), "audiences.AudienceExport": _("Audience exports")},
    ),
    (
        "activate",
        pgettext_lazy("journey", "Activate"),
        {
            "campaigns.Campaign": _("Campaigns"),
            "programmatic.LineItem": _("Programmatic line items"),
            "programmatic.Creative": _("Creatives"),
            "campaigns.Connector": _("Connectors"),
            "campaigns.FrequencyCap": _("Frequency caps"),
        },
    ),
    (
        "measure",
        pgettext_lazy("journey", "Measure"),
        {
            "reporting.PerformanceDashboard": _("Performance dashboard"),
            "reporting.DeliveryFigure": _("Delivery figures"),
            "programmatic.BidDay": _("Bid report"),
            "optimisation.Rule": _("Automated rules"),
            "reporting.ReportJob": _("Reports"),
        },
    ),
    (
        "protect",
        pgettext_lazy("journey", "Protect"),
        {
            "privacy.ConsentRecord": _("Consents"),
            "privacy.DataSubjectRequest": _("Data-subject requests"),
            "privacy.Suppression": _("Suppression list"),
            "privacy.RetentionPolicy": _("Retention policies"),
            "privacy.AuditEntry": _("Audit log"),
        },
    ),
    (
        "settings",
        pgettext_lazy("journey", "Settings"),
        {
            "accounts.Workspace": _("Workspaces"),
            "accounts.Membership": _("Members and roles"),
            "customers.AttributeDefinition": _("Profile attributes"),
            "customers.SurveyQuestion": _("Survey questions"),
            "customers.MatchRule": _("Match rules"),
            "customers.ImportJob": _("Imports"),
            "reporting.AttributionSettings": _("Attribution"),
            "auth.User": _("Users"),
        },
    ),
]
TECHNICAL = ("technical", _("Technical lists"))
TECHNICAL_NAMES = {
    "audiences.AudienceRun": _("Audience computations"),
    "programmatic.BidderDay": _("Bidder days"),
    "insights.FeatureSet": _("Feature sets"),
    "campaigns.Handoff": _("Hand-offs"),
    "customers.Identity": _("Identities"),
    "insights.InsightJob": _("Insight jobs"),
    "campaigns.LedgerEntry": _("Ledger entries"),
    "campaigns.PendingSend": _("Pending sends"),
    "insights.PersonaRun": _("Persona runs"),
    "customers.ProfileMerge": _("Profile merges"),
    "insights.RfmRun": _("RFM runs"),
    "optimisation.RuleEvaluation": _("Rule evaluations"),
    "campaigns.Touch": _("Touches (deliveries)"),
    "privacy.RemovalNotice": _("Removal notices"),
    "django_celery_beat.PeriodicTask": _("Periodic tasks"),
    "auth.Group": _("Groups"),
}


class CibleAdminSite(admin.AdminSite):
    site_header = _("Cible")
    site_title = _("Cible")
    index_title = _("Your marketing, from knowing customers to measuring campaigns")
    site_url = None  # no public site: the header's "View site" would lead nowhere

    index_template = "admin/cible_index.html"

    def index(self, request, extra_context=None):
        """The home page: the chosen workspace at a glance above the lists."""
        from accounts.admin_base import roles_for
        from accounts.models import Workspace
        from optimisation.home import home_overview

        mine = Workspace.objects.order_by("name")
        if not request.user.is_superuser:
            mine = mine.filter(pk__in=list(roles_for(request)))
        workspaces = list(mine[:100])
        chosen = next((w for w in workspaces if w.slug == request.GET.get("workspace")), None)
        chosen = chosen or (workspaces[0] if workspaces else None)
        context = {
            "cible_workspaces": workspaces,
            "cible_home": home_overview(workspace=chosen) if chosen else None,
            **(extra_context or {}),
        }
        return super().index(request, context)

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        models = {model["model"]._meta.label: (app, model) for app in apps for model in app["models"]}
        grouped = []
        placed: set[str] = set()
        for key, name, members in JOURNEY:
            entries = []
            for label, title in members.items():
                if label in models:
                    entries.append({**models[label][1], "name": title})
                    placed.add(label)
            if entries:
                grouped.append(self._group(key, name, entries, models[next(iter(placed & set(members)))][0]))
        rest = [
            {**model, "name": TECHNICAL_NAMES.get(label, model["name"])}
            for label, (_app, model) in models.items()
            if label not in placed
        ]
        if rest:
            rest.sort(key=lambda model: str(model["name"]))
            first = next(app for app in apps if any(m["model"] is rest[0]["model"] for m in app["models"]))
            grouped.append(self._group(TECHNICAL[0], TECHNICAL[1], rest, first))
        return grouped

    @staticmethod
    def _group(key, name, models, app) -> dict:
        return {
            "name": name,
            "app_label": key,
            "app_url": app["app_url"],
            "has_module_perms": True,
            "models": models,
        }


class CibleAdminConfig(AdminConfig):
    default_site = "config.admin.CibleAdminSite"
