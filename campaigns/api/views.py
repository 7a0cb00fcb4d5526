import math

from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api.base import WorkspaceScopedViewSet
from accounts.roles import Capability
from campaigns import services
from campaigns.activation import campaign_forecast
from campaigns.api import serializers as s
from campaigns.api.filters import CampaignFilter
from campaigns.api.lean import campaign_answers
from campaigns.experiments import experiment_results, sample_size
from campaigns.models import Campaign, Connector, FrequencyCap, LedgerEntry, Target, Transition
from core.errors import CommonErrorCode, Conflict
from core.lean import accepts_json, encoded_page, encoded_response


class CampaignViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    WorkspaceScopedViewSet[Campaign],
):
    """Campaigns: targets and their messages, the lifecycle actions, budgets and the spend ledger."""

    model = Campaign
    filterset_class = CampaignFilter
    ordering_fields = ["starts_at", "ends_at", "name", "created_at", "spent"]
    write_capability = Capability.RUN_CAMPAIGNS

    def scoped_queryset(self, queryset):
        queryset = queryset.prefetch_related(Prefetch("targets", queryset=Target.objects.order_by("id")))
        return services.with_spent_today(campaigns=queryset, workspace=self.workspace)

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update"):
            return s.CampaignInput
        return s.CampaignOutput

    def list(self, request, *args, **kwargs):
        if not accepts_json(request):
            return super().list(request, *args, **kwargs)
        return encoded_page(self, self.filter_queryset(self.get_queryset()).prefetch_related(None), campaign_answers)

    def retrieve(self, request, *args, **kwargs):
        if not accepts_json(request):
            return super().retrieve(request, *args, **kwargs)
        campaign = self.get_row(lambda rows: rows.prefetch_related(None))
        return encoded_response(campaign_answers([campaign])[0])

    def _out(self, campaign: Campaign, code=status.HTTP_200_OK) -> Response:
        fresh = self.scoped_queryset(self.workspace.campaigns.filter(pk=campaign.pk)).get()
        return Response(s.CampaignOutput(fresh, context=self.get_serializer_context()).data, status=code)

    def _input(self, serializer_class, request, **kwargs) -> dict:
        payload = request if not hasattr(request, "data") else request.data
        data = serializer_class(data=payload, context=self.get_serializer_context(), **kwargs)
        data.is_valid(raise_exception=True)
        return data.validated_data

    @extend_schema(request=s.CampaignInput, responses={201: s.CampaignOutput})
    def create(self, request, *args, **kwargs):
        data = self._input(s.CampaignInput, request)
        campaign = services.campaign_create(workspace=self.workspace, owner=request.user, **data)
        return self._out(campaign, status.HTTP_201_CREATED)

    @extend_schema(request=s.CampaignInput, responses=s.CampaignOutput)
    def update(self, request, *args, **kwargs):
        campaign = self.get_object()
        data = self._input(s.CampaignInput, request, partial=kwargs.get("partial", False))
        return self._out(services.campaign_update(campaign=campaign, **data))

    def _transition(self, request, to: str, serializer=s.ReasonInput) -> Response:
        campaign = self.get_object()
        reason = self._input(serializer, request)["reason"]
        campaign = services.campaign_transition(
            campaign=campaign, to=to, actor=request.user, source="api", reason=reason
        )
        return self._out(campaign)

    @extend_schema(request=s.ReasonInput, responses=s.ActivationOutput)
    @action(detail=True, methods=["post"])
    def activate(self, request, *args, **kwargs):
        """Schedule a draft; it starts at once when its start time has come. The answer carries the
        forecast: what the activation is to deliver, and who is left out and why. A target whose
        audience was never computed, or a campaign whose audiences are all empty, is refused."""
        campaign = self.get_object()
        reason = self._input(s.ReasonInput, request)["reason"]
        forecast = campaign_forecast(campaign=campaign)
        campaign = services.campaign_activate(campaign=campaign, actor=request.user, reason=reason)
        fresh = self.scoped_queryset(self.workspace.campaigns.filter(pk=campaign.pk)).get()
        context = {**self.get_serializer_context(), "forecast": forecast}
        return Response(s.ActivationOutput(fresh, context=context).data)

    @extend_schema(responses=s.ForecastOutput)
    @action(detail=True, methods=["get"], filterset_class=None, ordering_fields=None, pagination_class=None)
    def forecast(self, request, *args, **kwargs):
        """What activating (or re-delivering) the campaign now would do, target by target and channel by
        channel: members, and who is left out by consent, suppression, area and frequency caps."""
        return Response(s.ForecastOutput(campaign_forecast(campaign=self.get_object())).data)

    @extend_schema(responses=s.ExperimentOutput)
    @action(detail=True, methods=["get"], filterset_class=None, ordering_fields=None, pagination_class=None)
    def experiment(self, request, *args, **kwargs):
        """What the campaign caused: each target's arm against the campaign's control group (and, in an
        A/B test, against the first variant), since its activation: conversions, revenue, uplift with a
        95 % interval, a significance test, incremental conversions and revenue."""
        return Response(s.ExperimentOutput(experiment_results(campaign=self.get_object())).data)

    @extend_schema(parameters=[s.SampleSizeInput], responses=s.SampleSizeOutput)
    @action(
        detail=False,
        methods=["get"],
        url_path="sample-size",
        filterset_class=None,
        ordering_fields=None,
        pagination_class=None,
    )
    def sample_size(self, request, *args, **kwargs):
        """Before launch: the people an experiment needs to detect a given change of conversion rate."""
        data = self._input(s.SampleSizeInput, request.query_params)
        per_group = sample_size(
            baseline=data["baseline"], uplift=data["uplift"], alpha=data["alpha"], power=data["power"]
        )
        share = data["holdout_percent"] / 100
        ratio = (1 - share) / share  # contacted people per control person
        control = math.ceil(per_group * (1 + 1 / ratio) / 2)
        audience = math.ceil(max(control / share, per_group * (1 + ratio) / 2 / (1 - share)))
        return Response(s.SampleSizeOutput({"per_group": per_group, "control": control, "audience": audience}).data)

    @extend_schema(request=s.ReasonInput, responses=s.CampaignOutput)
    @action(detail=True, methods=["post"])
    def pause(self, request, *args, **kwargs):
        return self._transition(request, Campaign.Status.PAUSED)

    @extend_schema(request=s.ReasonInput, responses=s.CampaignOutput)
    @action(detail=True, methods=["post"])
    def resume(self, request, *args, **kwargs):
        campaign = self.get_object()
        reason = self._input(s.ReasonInput, request)["reason"]
        return self._out(services.campaign_resume(campaign=campaign, actor=request.user, reason=reason))

    @extend_schema(request=s.CancelInput, responses=s.CampaignOutput)
    @action(detail=True, methods=["post"])
    def cancel(self, request, *args, **kwargs):
        """Cancel now: no more deliveries, triggered sends or spend."""
        return self._transition(request, Campaign.Status.CANCELLED, s.CancelInput)

    @extend_schema(request=s.BudgetInput, responses=s.CampaignOutput)
    @action(detail=True, methods=["post"])
    def budget(self, request, *args, **kwargs):
        """Change the total or daily cap; a ledger entry keeps the author and the reason."""
        campaign = self.get_object()
        data = self._input(s.BudgetInput, request)
        campaign = services.budget_change(
            campaign=campaign,
            actor=request.user,
            reason=data["reason"],
            total=data.get("total"),
            daily=data.get("daily"),
        )
        return self._out(campaign)

    @extend_schema(request=s.SpendInput, responses={201: s.LedgerOutput, 200: s.LedgerOutput})
    @action(detail=True, methods=["post"])
    def spend(self, request, *args, **kwargs):
        """Record spend; the same idempotency key again returns the first entry (200) and adds nothing."""
        campaign = self.get_object()
        data = self._input(s.SpendInput, request)
        target = None
        if data.get("target") is not None:
            target = Target.objects.filter(campaign=campaign, pk=data["target"]).first()
            if target is None:
                raise ValidationError(
                    {
                        "target": ValidationError(
                            gettext("No such target in this campaign."), code=CommonErrorCode.INVALID
                        )
                    }
                )
        result = services.spend_record(
            campaign=campaign,
            amount=data["amount"],
            idempotency_key=data["idempotency_key"],
            occurred_at=data.get("occurred_at"),
            target=target,
            currency=data.get("currency"),
            source=data.get("source", "api"),
            author=request.user,
            channel=data["channel"],
        )
        return Response(
            s.LedgerOutput(result.entry).data, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        )

    @extend_schema(responses=s.LedgerOutput(many=True))
    @action(detail=True, methods=["get"], filterset_class=None, ordering_fields=None)
    def ledger(self, request, *args, **kwargs):
        """The campaign's spend and budget changes, newest first."""
        entries = LedgerEntry.objects.filter(campaign=self.get_object()).order_by("-recorded_at", "-id")
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(s.LedgerOutput(page, many=True).data)

    @extend_schema(responses=s.TransitionOutput(many=True))
    @action(detail=True, methods=["get"], filterset_class=None, ordering_fields=None)
    def transitions(self, request, *args, **kwargs):
        """Every change of state: who, when, why."""
        rows = Transition.objects.filter(campaign=self.get_object()).order_by("-at", "-id")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(s.TransitionOutput(page, many=True).data)


class FrequencyCapViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    WorkspaceScopedViewSet,
):
    """At most N touches per person in a window, across the workspace's campaigns."""

    model = FrequencyCap
    serializer_class = s.FrequencyCapIO
    write_capability = Capability.RUN_CAMPAIGNS
    filterset_fields = ["channel"]

    def perform_create(self, serializer):
        self._unique(serializer)
        serializer.save(workspace=self.workspace)

    def perform_update(self, serializer):
        self._unique(serializer)
        serializer.save()

    def _unique(self, serializer):
        data = {
            **(
                {}
                if serializer.instance is None
                else {"channel": serializer.instance.channel, "window": serializer.instance.window}
            ),
            **serializer.validated_data,
        }
        clash = FrequencyCap.objects.filter(
            workspace=self.workspace, channel=data.get("channel", ""), window=data["window"]
        )
        if serializer.instance is not None:
            clash = clash.exclude(pk=serializer.instance.pk)
        if clash.exists():
            raise Conflict(
                {
                    "window": ValidationError(
                        gettext("A cap with this channel and window exists."), code=CommonErrorCode.UNIQUE
                    )
                }
            )


class ConnectorViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    WorkspaceScopedViewSet,
):
    """How deliveries reach each channel: a signed webhook or a CSV file. Secrets are never shown."""

    model = Connector
    serializer_class = s.ConnectorIO
    write_capability = Capability.MANAGE_WORKSPACE
    filterset_fields = ["channel", "kind", "active"]

    def perform_create(self, serializer):
        if Connector.objects.filter(workspace=self.workspace, channel=serializer.validated_data["channel"]).exists():
            raise Conflict(
                {
                    "channel": ValidationError(
                        gettext("This channel has a connector already."), code=CommonErrorCode.UNIQUE
                    )
                }
            )
        serializer.save(workspace=self.workspace)

    def perform_update(self, serializer):
        channel = serializer.validated_data.get("channel", serializer.instance.channel)
        if (
            Connector.objects.filter(workspace=self.workspace, channel=channel)
            .exclude(pk=serializer.instance.pk)
            .exists()
        ):
            raise Conflict(
                {
                    "channel": ValidationError(
                        gettext("This channel has a connector already."), code=CommonErrorCode.UNIQUE
                    )
                }
            )
        serializer.save()
