from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api.base import WorkspaceScopedViewSet
from accounts.roles import Capability
from campaigns.api import views as campaign_views
from optimisation.api import serializers as s
from optimisation.models import Rule, RuleEvaluation
from optimisation.reallocation import reallocation_apply, recommendation
from optimisation.rules import rule_preview, rule_run


class CampaignViewSet(campaign_views.CampaignViewSet):
    """Campaigns, with what acting on their results offers: budget reallocation and rule history."""

    @extend_schema(parameters=[s.ReallocationParameters], responses=s.ReallocationOutput)
    @action(detail=True, methods=["get"], filterset_class=None, ordering_fields=None)
    def reallocation(self, request, *args, **kwargs):
        """What moving budget shares toward the best targets would do now, with the figures behind it."""
        params = s.ReallocationParameters(data=request.query_params)
        params.is_valid(raise_exception=True)
        plan = recommendation(campaign=self.get_object(), **params.validated_data)
        return Response(s.ReallocationOutput(plan).data)

    @extend_schema(request=s.ReallocationApply, responses=s.ReallocationOutput)
    @action(detail=True, methods=["post"])
    def reallocate(self, request, *args, **kwargs):
        """Apply the recommendation: each share that moves is a ledger entry with its author."""
        data = s.ReallocationApply(data=request.data)
        data.is_valid(raise_exception=True)
        options = dict(data.validated_data)
        reason = options.pop("reason")
        plan = reallocation_apply(
            campaign=self.get_object(), actor=request.user, source="api", reason=reason, **options
        )
        return Response(s.ReallocationOutput(plan).data)

    @extend_schema(responses=s.RuleEvaluationOutput(many=True))
    @action(detail=True, methods=["get"], filterset_class=None, ordering_fields=None, url_path="rule-evaluations")
    def rule_evaluations(self, request, *args, **kwargs):
        """Every evaluation of a rule on this campaign: what it saw and what it did."""
        rows = RuleEvaluation.objects.filter(campaign=self.get_object()).order_by("-at", "-id")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(
            s.RuleEvaluationOutput(page, many=True, context=self.get_serializer_context()).data
        )


class RuleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    WorkspaceScopedViewSet,
):
    """Automated rules: conditions on KPIs over a window (all must hold), a guard, one action, a schedule.

    A rule without a campaign applies to each active or paused campaign of the workspace.
    """

    model = Rule
    serializer_class = s.RuleIO
    write_capability = Capability.RUN_CAMPAIGNS
    filterset_fields = ["campaign", "enabled", "action", "schedule"]
    action_capabilities = {"preview": Capability.READ}

    def scoped_queryset(self, queryset):
        return queryset.select_related("campaign")

    def perform_create(self, serializer):
        serializer.save(workspace=self.workspace, created_by=self.request.user)

    @extend_schema(request=None, responses=s.RulePreviewOutput(many=True))
    @action(detail=True, methods=["post"])
    def preview(self, request, *args, **kwargs):
        """What the rule would do now, campaign by campaign; nothing is changed or recorded."""
        return Response(s.RulePreviewOutput(rule_preview(rule=self.get_object()), many=True).data)

    @extend_schema(request=None, responses=s.RuleEvaluationOutput(many=True))
    @action(detail=True, methods=["post"])
    def run(self, request, *args, **kwargs):
        """Evaluate the rule now and act where it holds; every evaluation goes to its history."""
        evaluations = rule_run(rule=self.get_object(), source="manual")
        return Response(s.RuleEvaluationOutput(evaluations, many=True, context=self.get_serializer_context()).data)

    @extend_schema(responses=s.RuleEvaluationOutput(many=True))
    @action(detail=True, methods=["get"], filter_backends=[])
    def evaluations(self, request, *args, **kwargs):
        """The rule's history: what it saw and what it did, newest first."""
        rows = RuleEvaluation.objects.filter(rule=self.get_object()).order_by("-at", "-id")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(
            s.RuleEvaluationOutput(page, many=True, context=self.get_serializer_context()).data
        )
