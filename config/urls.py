import sys

from django.contrib import admin
from django.http import HttpResponse, JsonResponse
from django.urls import include, path
from django.views.defaults import bad_request, page_not_found, server_error
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from accounts.api.views import MembershipViewSet, TokenView, WorkspaceViewSet
from audiences.api.views import ExportViewSet, SegmentViewSet
from campaigns.api.views import ConnectorViewSet, FrequencyCapViewSet
from config.health import health, liveness
from core.errors import CommonErrorCode
from core.outages import RETRY_AFTER_S, dependency_of, outage_logged, outage_message
from customers.api import views as customers
from insights.api import views as insights
from optimisation.api.views import CampaignViewSet, RuleViewSet
from privacy.api import views as privacy
from programmatic.api import views as programmatic
from reporting.api.views import DeliveryFigureViewSet, ReportJobViewSet, ReportViewSet

router = DefaultRouter(trailing_slash=True)
router.register("workspaces", WorkspaceViewSet, basename="workspace")

workspace_router = DefaultRouter(trailing_slash=True)
workspace_router.include_root_view = False
workspace_router.register("members", MembershipViewSet, basename="membership")
workspace_router.register("profiles", privacy.ProfileViewSet, basename="profile")
workspace_router.register("identities", customers.IdentityViewSet, basename="identity")
workspace_router.register("match-rules", customers.MatchRuleViewSet, basename="match-rule")
workspace_router.register(
    "attribute-definitions", customers.AttributeDefinitionViewSet, basename="attribute-definition"
)
workspace_router.register("events", customers.EventViewSet, basename="event")
workspace_router.register("orders", customers.OrderViewSet, basename="order")
workspace_router.register("survey-responses", customers.SurveyResponseViewSet, basename="survey-response")
workspace_router.register("survey-questions", customers.SurveyQuestionViewSet, basename="survey-question")
workspace_router.register("consents", privacy.ConsentRecordViewSet, basename="consent")
workspace_router.register("imports", customers.ImportJobViewSet, basename="import-job")
workspace_router.register("ingest", customers.IngestViewSet, basename="ingest")
workspace_router.register("segments", SegmentViewSet, basename="segment")
workspace_router.register("exports", ExportViewSet, basename="export")
workspace_router.register("insights/jobs", insights.JobViewSet, basename="insight-job")
workspace_router.register("insights/features", insights.FeaturesViewSet, basename="insight-features")
workspace_router.register("insights/rfm-runs", insights.RfmRunViewSet, basename="rfm-run")
workspace_router.register("insights/clv-runs", insights.ClvRunViewSet, basename="clv-run")
workspace_router.register("insights/clv-scores", insights.ClvScoreViewSet, basename="clv-score")
workspace_router.register("insights/rfm-segments", insights.RfmSegmentViewSet, basename="rfm-segment")
workspace_router.register("insights/persona-runs", insights.PersonaRunViewSet, basename="persona-run")
workspace_router.register("insights/personas", insights.PersonaViewSet, basename="persona")
workspace_router.register("insights/models", insights.ModelViewSet, basename="insight-model")
workspace_router.register("insights/lookalikes", insights.LookalikeViewSet, basename="lookalike")
workspace_router.register("programmatic/creatives", programmatic.CreativeViewSet, basename="creative")
workspace_router.register("programmatic/line-items", programmatic.LineItemViewSet, basename="line-item")
workspace_router.register("programmatic/bid-days", programmatic.BidDayViewSet, basename="bid-day")
workspace_router.register("programmatic/bidder-days", programmatic.BidderDayViewSet, basename="bidder-day")
workspace_router.register("campaigns", CampaignViewSet, basename="campaign")
workspace_router.register("frequency-caps", FrequencyCapViewSet, basename="frequency-cap")
workspace_router.register("connectors", ConnectorViewSet, basename="connector")
workspace_router.register("rules", RuleViewSet, basename="rule")
workspace_router.register("delivery-figures", DeliveryFigureViewSet, basename="delivery-figure")
workspace_router.register("reports", ReportViewSet, basename="report")
workspace_router.register("report-jobs", ReportJobViewSet, basename="report-job")
workspace_router.register("privacy-requests", privacy.RequestViewSet, basename="privacy-request")
workspace_router.register("suppressions", privacy.SuppressionViewSet, basename="suppression")
workspace_router.register("removal-notices", privacy.RemovalNoticeViewSet, basename="removal-notice")
workspace_router.register("audit-log", privacy.AuditEntryViewSet, basename="audit-entry")
workspace_router.register("privacy", privacy.PrivacyViewSet, basename="privacy")


urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),  # the language chosen in the admin's header
    path("api/", include(router.urls)),
    path("api/workspaces/<slug:workspace>/", include(workspace_router.urls)),
    path("api/auth/token/", TokenView.as_view(), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("health/", health, name="health"),
    path("health/live/", liveness, name="health-live"),
]


def api_aware_not_found(request, exception):
    """A URL that matches no route: JSON under /api/ (as every other API error), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return page_not_found(request, exception)


def api_aware_bad_request(request, exception):
    """A request Django refuses before any view (too many form fields, a suspicious header): JSON under /api/."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Bad request.", "code": "invalid"}, status=400)
    return bad_request(request, exception)


def api_aware_server_error(request):
    """An unhandled exception, anywhere (a view, a middleware, the session store): a dependency down
    is a 503 with Retry-After (core.outages), JSON under /api/; anything else a 500, JSON under /api/."""
    exc = sys.exc_info()[1]
    dependency = dependency_of(exc) if exc is not None else None
    api = request.path.startswith("/api/")
    if dependency is not None:
        outage_logged(dependency, exc)
        message = outage_message(dependency)
        response = (
            JsonResponse({"detail": message, "code": CommonErrorCode.UNAVAILABLE}, status=503)
            if api
            else HttpResponse(
                f"<!doctype html><title>Unavailable</title><h1>Unavailable</h1><p>{message}</p>", status=503
            )
        )
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
    if api:
        return JsonResponse({"detail": "Server error.", "code": CommonErrorCode.SERVER_ERROR}, status=500)
    return server_error(request)


handler404 = api_aware_not_found
handler400 = api_aware_bad_request
handler500 = api_aware_server_error
