"""What Cible learns, in the API: features, RFM, personas, models and lookalikes, and their jobs.

Computations run in workers: a POST answers 202 with the job (`jobs/<id>/` shows its progress);
in the embedded mode the job has already run when the answer comes.
"""

from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from accounts.api.base import WorkspaceScopedViewSet
from accounts.roles import Capability
from insights import services
from insights.api import serializers as s
from insights.api.filters import ClvScoreFilter
from insights.models import (
    ClvRun,
    ClvScore,
    FeatureSet,
    InsightJob,
    Lookalike,
    Persona,
    PersonaRun,
    PredictiveModel,
    RfmRun,
    RfmSegment,
)
from insights.rfm import reachability, rfm_segments
from segments.api.serializers import SegmentOutput

# Learning from the data and naming what it found is a marketer's work, like segments and campaigns.
LEARN = Capability.RUN_CAMPAIGNS


def _accepted(job: InsightJob) -> Response:
    job.refresh_from_db()  # in embedded mode the job has already run
    return Response(s.JobOutput(job).data, status=status.HTTP_202_ACCEPTED)


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceScopedViewSet):
    """The computations of insights and their progress (what the worker is doing, 0 to 100 %)."""

    model = InsightJob
    serializer_class = s.JobOutput
    ordering_fields = ["created_at", "id"]
    filterset_fields = ["kind", "status"]


class FeaturesViewSet(WorkspaceScopedViewSet):
    """The per-profile features every model and clustering learns from."""

    model = FeatureSet
    write_capability = LEARN

    def get_serializer_class(self):
        return s.FeaturesRefreshInput if self.action == "refresh" else s.FeatureSetOutput

    @extend_schema(responses=s.FeatureSetOutput)
    def list(self, request, *args, **kwargs):
        feature_set = FeatureSet.objects.filter(workspace=self.workspace).first()
        if feature_set is None or feature_set.as_of is None:
            raise NotFound(gettext("The features have not been computed yet: POST to refresh/."))
        return Response(s.FeatureSetOutput(feature_set).data)

    @extend_schema(request=s.FeaturesRefreshInput, responses={202: s.JobOutput})
    @action(detail=False, methods=["post"])
    def refresh(self, request, *args, **kwargs):
        """Bring the features up to date: the profiles that changed, or all of them with `full`."""
        data = s.FeaturesRefreshInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _accepted(services.features_request(workspace=self.workspace, by=request.user, **data.validated_data))


class RfmRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceScopedViewSet):
    """RFM scorings: distribution by named segment, score boundaries and migration since the run before."""

    model = RfmRun
    serializer_class = s.RfmRunOutput
    write_capability = LEARN

    @extend_schema(request=s.RfmRunInput, responses={202: s.JobOutput})
    def create(self, request, *args, **kwargs):
        """Score every customer as of a moment (now by default)."""
        data = s.RfmRunInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.rfm_request(workspace=self.workspace, as_of=data.validated_data.get("as_of"), by=request.user)
        return _accepted(job)


class ClvRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceScopedViewSet):
    """Customer lifetime value runs: BG/NBD and Gamma-Gamma fitted on every customer's orders as of
    a moment (parameters, the frequency-value correlation Gamma-Gamma assumes small, deciles of
    value with their share)."""

    model = ClvRun
    serializer_class = s.ClvRunOutput
    write_capability = LEARN

    @extend_schema(request=s.ClvRunInput, responses={202: s.JobOutput})
    def create(self, request, *args, **kwargs):
        """Fit and score every customer as of a moment (now by default), in a worker."""
        data = s.ClvRunInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _accepted(services.clv_request(workspace=self.workspace, by=request.user, **data.validated_data))

    @extend_schema(request=None, responses={200: SegmentOutput, 201: SegmentOutput})
    @action(detail=False, methods=["post"], url_path="at-risk-segment")
    def at_risk_segment(self, request, *args, **kwargs):
        """The ready-made segment "High value at risk" (CLV decile 8 or more, probability of still being
        a customer below 0.5): created the first time (201), the same one afterwards (200)."""
        segment, created = services.clv_at_risk_segment(workspace=self.workspace, owner=request.user)
        return Response(
            SegmentOutput(segment, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ClvScoreViewSet(mixins.ListModelMixin, WorkspaceScopedViewSet):
    """Each customer's lifetime value in the current run (or `?run=`): probability of still being a
    customer, expected purchases and value, the discounted CLV and its decile (10 = the top tenth)."""

    model = ClvScore
    serializer_class = s.ClvScoreOutput
    filterset_class = ClvScoreFilter
    ordering_fields = ["clv", "value_12m", "spend_per_year", "p_alive", "p_alive_change", "decile", "profile"]

    def scoped_queryset(self, queryset):
        if "run" in self.request.query_params:
            return queryset.order_by("-clv", "profile_id")
        current = ClvRun.current(workspace_id=self.workspace.pk)
        return queryset.filter(run=current.pk if current else 0).order_by("-clv", "profile_id")


class RfmSegmentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, WorkspaceScopedViewSet
):
    """The ten named RFM segments, in order: the first whose ranges hold wins. An edit that would
    leave one unreachable is refused; an accepted one applies to the current run at once."""

    model = RfmSegment
    serializer_class = s.RfmSegmentIO
    write_capability = LEARN

    def list(self, request, *args, **kwargs):
        rfm_segments(workspace=self.workspace)  # the defaults, the first time
        return super().list(request, *args, **kwargs)

    def update(self, request, *args, **kwargs):
        data = s.RfmSegmentIO(data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        segment = services.rfm_segment_update(segment=self.get_object(), **data.validated_data)
        return Response(s.RfmSegmentIO(segment).data)

    @extend_schema(
        responses=OpenApiResponse(
            response=OpenApiTypes.OBJECT, description='Segment code -> cells won; "" counts the cells none wins.'
        )
    )
    @action(detail=False, methods=["get"])
    def reachability(self, request, *args, **kwargs):
        """How many of the 125 (R, F, M) combinations each segment wins ("" for none)."""
        return Response(reachability(rfm_segments(workspace=self.workspace)))


class PersonaRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceScopedViewSet):
    """Clusterings of the base into personas, with the choice of k, stability and drift."""

    model = PersonaRun
    serializer_class = s.PersonaRunOutput
    write_capability = LEARN

    @extend_schema(request=s.PersonaRunInput, responses={202: s.JobOutput})
    def create(self, request, *args, **kwargs):
        """Cluster the base (every facet, attitudinal or behavioural), k given or suggested."""
        data = s.PersonaRunInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _accepted(services.personas_request(workspace=self.workspace, by=request.user, **data.validated_data))


class PersonaViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceScopedViewSet):
    """Personas: size, share, centroid, over-represented traits, and the segment a campaign targets."""

    model = Persona
    serializer_class = s.PersonaOutput
    write_capability = LEARN
    filterset_fields = ["active"]

    @extend_schema(request=s.PersonaNameInput, responses=s.PersonaOutput)
    @action(detail=True, methods=["post"])
    def rename(self, request, *args, **kwargs):
        data = s.PersonaNameInput(data=request.data)
        data.is_valid(raise_exception=True)
        persona = services.persona_name_set(persona=self.get_object(), name=data.validated_data["name"])
        return Response(s.PersonaOutput(persona).data)


class ModelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, WorkspaceScopedViewSet):
    """Predictive models: membership probability of a segment (fine targets, lookalikes), purchase
    propensity and churn risk; held-out AUC, Brier score, precision/reach curve, importances."""

    model = PredictiveModel
    write_capability = LEARN
    filterset_fields = ["kind", "segment", "status"]

    def get_serializer_class(self):
        return s.ModelInput if self.action == "create" else s.ModelOutput

    @extend_schema(request={"application/json": s.MODEL_INPUT_SCHEMA}, responses={202: s.JobOutput})
    def create(self, request, *args, **kwargs):
        """Create a model and queue its training."""
        data = s.ModelInput(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        _, job = services.model_create(workspace=self.workspace, by=request.user, **data.validated_data)
        return _accepted(job)

    @extend_schema(request=None, responses={202: s.JobOutput})
    @action(detail=True, methods=["post"])
    def train(self, request, *args, **kwargs):
        """Train again on the data as it is now, and rescore every profile."""
        return _accepted(services.model_train_request(model=self.get_object(), by=request.user))

    @extend_schema(request={"application/json": s.THRESHOLD_INPUT_SCHEMA}, responses=s.CurveRowOutput)
    @action(detail=True, methods=["post"])
    def threshold(self, request, *args, **kwargs):
        """Pick the threshold by reach (at most N profiles) or by precision (at least P)."""
        data = s.ThresholdInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(services.model_threshold_pick(model=self.get_object(), **data.validated_data))


class LookalikeViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, WorkspaceScopedViewSet
):
    """Twin profiles of a seed segment, in bands of 1 % to 10 % of the eligible base, each a segment."""

    model = Lookalike
    write_capability = LEARN

    def get_serializer_class(self):
        return s.LookalikeInput if self.action == "create" else s.LookalikeOutput

    @extend_schema(request=s.LookalikeInput, responses={202: s.JobOutput})
    def create(self, request, *args, **kwargs):
        data = s.LookalikeInput(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        _, job = services.lookalike_create(workspace=self.workspace, by=request.user, **data.validated_data)
        return _accepted(job)

    @extend_schema(request=None, responses={202: s.JobOutput})
    @action(detail=True, methods=["post"])
    def refresh(self, request, *args, **kwargs):
        """Rank the base again (the seed's model retrained first when its audience changed)."""
        return _accepted(services.lookalike_refresh_request(lookalike=self.get_object(), by=request.user))
