import zoneinfo
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from campaigns.errors import CampaignErrorCode
from campaigns.models import (
    TARGET_FIELDS,
    Campaign,
    CampaignChannel,
    Connector,
    FrequencyCap,
    LedgerEntry,
    Target,
    Transition,
)
from campaigns.services import connector_check, spend_allowed_today
from campaigns.services.setup import MAX_TARGETS
from core.errors import CommonErrorCode
from core.serializers import (
    BooleanField,
    CharField,
    DateTimeField,
    DayAwareDateTimeField,
    IsoDurationField,
    ListField,
    PropertiesField,
    StrictInput,
)
from segments.api.serializers import RuleField, WorkspaceSegmentField


class WorkspaceDateTimeField(DayAwareDateTimeField):
    """A date-time without an offset is read in the workspace's time zone; answers carry that zone."""

    def _zone(self):
        workspace = self.context.get("workspace")
        return zoneinfo.ZoneInfo(workspace.time_zone) if workspace else None

    def default_timezone(self):
        return self._zone() or super().default_timezone()

    def to_representation(self, value):
        zone = self._zone()
        if zone and value is not None and timezone.is_aware(value):
            local = value.astimezone(zone)
            # RFC 3339 offsets are whole minutes (old local mean times are not): keep UTC then.
            if local.utcoffset().seconds % 60 == 0:
                value = local
        return super().to_representation(value)


class ScheduleDateTimeField(WorkspaceDateTimeField):
    """A campaign date: between 2000 and 2100."""

    schema_year_pattern = r"^(20\d\d|2100)-"

    def to_internal_value(self, value):
        refusal = serializers.ValidationError(
            gettext("Give a date between 2000 and 2100."), code=CommonErrorCode.OUT_OF_RANGE
        )
        try:
            parsed = super().to_internal_value(value)
        except serializers.ValidationError as error:
            if error.get_codes() == [CommonErrorCode.OUT_OF_RANGE]:
                raise refusal from None
            raise
        if not 2000 <= parsed.year <= 2100:
            raise refusal
        return parsed


class TargetIO(StrictInput, serializers.ModelSerializer):
    segment = WorkspaceSegmentField(allow_null=True, required=False)
    restriction = RuleField(
        required=False, allow_null=True, help_text="Rules (the rule language) that narrow the segment for this target."
    )
    trigger_properties = PropertiesField(
        required=False, help_text="Property: value pairs the trigger event must carry (texts, numbers, true/false)."
    )

    class Meta:
        model = Target
        fields = ["id", *TARGET_FIELDS, "activated_version"]
        read_only_fields = ["id", "activated_version"]


class CampaignInput(StrictInput, serializers.ModelSerializer):
    channels = ListField(
        child=serializers.ChoiceField(choices=CampaignChannel.choices),
        allow_empty=False,
        max_length=len(CampaignChannel.choices),
    )
    starts_at = ScheduleDateTimeField(
        help_text="A date-time, or a date: the start of that day in the workspace's time zone."
    )
    ends_at = ScheduleDateTimeField(
        end_of_day=True, help_text="A date-time, or a date: the campaign then runs to the end of that day."
    )
    targets = TargetIO(  # type: ignore[call-arg]  # ListSerializer's max_length, passed on by many=True
        many=True, required=False, max_length=MAX_TARGETS, help_text=f"At most {MAX_TARGETS} targets a campaign."
    )

    read_only_actions = {
        "status": "the activate/, pause/, resume/ and cancel/ actions",
        "spent": "spend/ (recorded spend)",
        "owner": "nothing: it is who created the campaign",
    }

    class Meta:
        model = Campaign
        fields = [
            "name",
            "objective",
            "channels",
            "channel_choice",
            "starts_at",
            "ends_at",
            "currency",
            "budget_total",
            "budget_daily",
            "pacing",
            "holdout_percent",
            "targets",
        ]
        extra_kwargs = {"currency": {"required": False}}
        validators: list[Callable[..., Any]] = []  # the service checks with the workspace

    def validate(self, data):
        start, end = data.get("starts_at"), data.get("ends_at")
        if start and end and end <= start:
            raise serializers.ValidationError(
                {"ends_at": ErrorDetail("The end must come after the start.", code=CampaignErrorCode.END_BEFORE_START)}
            )
        return data


class CampaignOutput(serializers.ModelSerializer):
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=CampaignChannel.choices), help_text="The channels it delivers on."
    )
    starts_at = WorkspaceDateTimeField()
    ends_at = WorkspaceDateTimeField()
    targets = TargetIO(many=True, read_only=True)
    spend_allowed_today = serializers.SerializerMethodField(
        help_text="What pacing allows today; null when no budget caps the campaign."
    )

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "objective",
            "channels",
            "channel_choice",
            "status",
            "starts_at",
            "ends_at",
            "currency",
            "budget_total",
            "budget_daily",
            "pacing",
            "holdout_percent",
            "spent",
            "spend_allowed_today",
            "owner",
            "activated_at",
            "targets",
            "created_at",
            "updated_at",
        ]

    def get_spend_allowed_today(self, obj) -> str | None:
        allowed = spend_allowed_today(campaign=obj)
        return None if allowed is None else str(allowed)


class ForecastChannel(serializers.Serializer):
    channel = CharField()
    excluded_by_consent = serializers.IntegerField(help_text="Members without consent in force for the channel.")
    excluded_by_suppression = serializers.IntegerField(help_text="Consented, but suppressed or erased.")
    excluded_by_area = serializers.IntegerField(help_text="Outside the target's area.")
    excluded_by_caps = serializers.IntegerField(help_text="At a frequency cap of the workspace.")
    on_preferred_channel_elsewhere = serializers.IntegerField(
        help_text='With channel_choice "preferred": reached on another channel of the campaign, their preferred one.'
    )
    already_reached = serializers.IntegerField(help_text="Reached by this target on this channel already.")
    will_receive = serializers.IntegerField()


class ForecastTarget(serializers.Serializer):
    target = serializers.IntegerField()
    variant = CharField()
    segment = serializers.IntegerField(allow_null=True)
    triggered_by = CharField(allow_null=True, help_text="A triggered target sends when the event happens.")
    audience_computed = BooleanField(allow_null=True)
    members = serializers.IntegerField(allow_null=True)
    excluded_by_experiment = serializers.IntegerField(
        allow_null=True,
        required=False,
        help_text="Members in the campaign's control group or in another variant's share of an A/B test.",
    )
    channels = ForecastChannel(many=True)


class ForecastOutput(serializers.Serializer):
    at = DateTimeField()
    will_receive = serializers.IntegerField(help_text="Deliveries an activation now would write, all targets.")
    targets = ForecastTarget(many=True)


class ExperimentGroup(serializers.Serializer):
    people = serializers.IntegerField(help_text="Members of the target's audience in the group.")
    converters = serializers.IntegerField(help_text="Of them, people with a completed order since the activation.")
    revenue = CharField(help_text="Their orders' amount, in the campaign's currency.")
    conversion_rate = serializers.FloatField(allow_null=True)
    revenue_per_person = serializers.FloatField(allow_null=True)


class ExperimentComparison(serializers.Serializer):
    uplift = serializers.FloatField(help_text="Conversion rate less the reference's (absolute).")
    uplift_low = serializers.FloatField()
    uplift_high = serializers.FloatField()
    relative_uplift = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(help_text="Two-sided test of equal conversion rates.")
    significant = BooleanField()
    incremental_conversions = serializers.FloatField()
    incremental_conversions_low = serializers.FloatField()
    incremental_conversions_high = serializers.FloatField()
    revenue_uplift_per_person = serializers.FloatField()
    incremental_revenue = serializers.FloatField()
    incremental_revenue_low = serializers.FloatField()
    incremental_revenue_high = serializers.FloatField()
    revenue_p_value = serializers.FloatField(help_text="Welch's test of equal revenue per person.")


class ExperimentTarget(serializers.Serializer):
    target = serializers.IntegerField()
    variant = CharField()
    segment = serializers.IntegerField(required=False)
    skipped = CharField(required=False)
    places = serializers.ListField(child=serializers.IntegerField(), required=False)
    arm = ExperimentGroup(required=False)
    control = ExperimentGroup(required=False)
    against_control = ExperimentComparison(required=False, allow_null=True)
    against_variant = CharField(required=False)
    against_first_variant = ExperimentComparison(required=False, allow_null=True)


class ExperimentOutput(serializers.Serializer):
    campaign = serializers.IntegerField()
    holdout_percent = CharField()
    since = DateTimeField()
    until = DateTimeField()
    confidence = serializers.FloatField()
    currency = CharField()
    targets = ExperimentTarget(many=True)


MIN_UPLIFT = 0.0001  # a hundredth of a point: smaller changes need more people than exist


class SampleSizeInput(StrictInput, serializers.Serializer):
    baseline = serializers.FloatField(min_value=0.0001, max_value=0.9999, help_text="Conversion rate without it.")
    uplift = serializers.FloatField(
        min_value=-0.9999, max_value=0.9999, help_text="The smallest change worth detecting, absolute (0.01 = 1 point)."
    )
    alpha = serializers.FloatField(min_value=0.001, max_value=0.5, default=0.05)
    power = serializers.FloatField(min_value=0.5, max_value=0.999, default=0.8)
    holdout_percent = serializers.FloatField(
        min_value=0.1, max_value=50, default=10, help_text="The control group's share of the audience."
    )

    def validate(self, data):
        if abs(data["uplift"]) < MIN_UPLIFT or not 0 < data["baseline"] + data["uplift"] < 1:
            raise serializers.ValidationError(
                {
                    "uplift": ErrorDetail(
                        f"The rate with it must stay between 0 and 1, and differ by {MIN_UPLIFT} at least.",
                        code=CampaignErrorCode.RATE_OUT_OF_RANGE,
                    )
                }
            )
        return data


class SampleSizeOutput(serializers.Serializer):
    per_group = serializers.IntegerField(help_text="People needed in each of two equal groups.")
    control = serializers.IntegerField(help_text="People the control group needs.")
    audience = serializers.IntegerField(
        help_text="Audience needed so that the control group (holdout_percent of it) and the contacted rest both "
        "reach their sizes."
    )


class ActivationOutput(CampaignOutput):
    forecast = serializers.SerializerMethodField(help_text="What the activation was to do, when it was asked.")

    class Meta(CampaignOutput.Meta):
        fields = [*CampaignOutput.Meta.fields, "forecast"]

    @extend_schema_field(ForecastOutput)
    def get_forecast(self, obj) -> dict:
        return ForecastOutput(self.context["forecast"]).data


class ReasonInput(StrictInput, serializers.Serializer):
    reason = CharField(required=False, allow_blank=True, default="", max_length=2000)


class CancelInput(StrictInput, serializers.Serializer):
    reason = CharField(max_length=2000, help_text="Why the campaign is cancelled (required).")


class BudgetInput(StrictInput, serializers.Serializer):
    total = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0, required=False, allow_null=True)
    daily = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0, required=False, allow_null=True)
    reason = CharField(max_length=2000)


class SpendInput(StrictInput, serializers.Serializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    idempotency_key = CharField(max_length=128)
    occurred_at = ScheduleDateTimeField(required=False)
    target = serializers.IntegerField(required=False, allow_null=True)
    currency = CharField(required=False, max_length=3)
    # Named like Serializer.source: DRF's metaclass takes declared fields off the class, so nothing is
    # shadowed at runtime; the stubs only see a field overriding the attribute.
    source = CharField(required=False, allow_blank=True, max_length=40, default="api")  # type: ignore[assignment]
    channel = serializers.ChoiceField(choices=CampaignChannel.choices, required=False, allow_blank=True, default="")


class LedgerOutput(serializers.ModelSerializer):
    class Meta:
        model = LedgerEntry
        fields = [
            "id",
            "kind",
            "amount",
            "balance",
            "currency",
            "target",
            "channel",
            "day",
            "occurred_at",
            "idempotency_key",
            "source",
            "reason",
            "author",
            "recorded_at",
        ]


class TransitionOutput(serializers.ModelSerializer):
    class Meta:
        model = Transition
        fields = ["id", "from_status", "to_status", "actor", "source", "reason", "at"]


class FrequencyCapIO(StrictInput, serializers.ModelSerializer):
    window = IsoDurationField(min_value=timedelta(minutes=1), max_value=timedelta(days=366))

    class Meta:
        model = FrequencyCap
        fields = ["id", "channel", "max_touches", "window"]
        validators: list[Callable[..., Any]] = []


class ConnectorIO(StrictInput, serializers.ModelSerializer):
    secret = CharField(write_only=True, required=False, allow_blank=True, max_length=200)

    class Meta:
        model = Connector
        fields = ["id", "channel", "kind", "url", "secret", "batch_size", "timeout_seconds", "max_attempts", "active"]
        validators: list[Callable[..., Any]] = []

    def validate(self, data):
        connector_check(
            kind=data.get("kind", getattr(self.instance, "kind", None)),
            url=data.get("url", getattr(self.instance, "url", "")),
            secret=data.get("secret", getattr(self.instance, "secret", "")),
        )
        return data
