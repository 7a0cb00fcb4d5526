from datetime import date, timedelta
from decimal import Decimal

from django.urls import reverse
from django.utils.translation import gettext
from rest_framework import serializers

from campaigns.models import MONEY, Campaign, CampaignChannel, Target
from core.errors import CommonErrorCode
from core.serializers import (
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    ListField,
    RegexField,
    StrictInput,
    UniqueListField,
)
from reporting.models import AttributionSettings, ConversionBasis, DeliveryFigure, ReportJob
from reporting.reports import GROUPS


class BoundedDateField(DateField):
    schema_year_pattern = r"^(20\d\d|2100)-"

    def to_internal_value(self, value):
        parsed = super().to_internal_value(value)
        if not date(2000, 1, 1) <= parsed <= date(2100, 12, 31):
            raise serializers.ValidationError(
                gettext("Give a date between 2000 and 2100."), code=CommonErrorCode.OUT_OF_RANGE
            )
        return parsed


class FigureInput(StrictInput, serializers.Serializer):
    campaign = serializers.IntegerField(min_value=1)
    target = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    channel = serializers.ChoiceField(choices=CampaignChannel.choices)
    day = BoundedDateField()
    # Named like Serializer.source: DRF's metaclass takes declared fields off the class, so nothing is
    # shadowed at runtime; the stubs only see a field overriding the attribute.
    source = RegexField(r"^[a-z0-9_.-]{0,40}$", required=False, default="", allow_blank=True, max_length=40)  # type: ignore[assignment]
    impressions = serializers.IntegerField(min_value=0, max_value=10**15, default=0)
    clicks = serializers.IntegerField(min_value=0, max_value=10**15, default=0)
    conversions = serializers.IntegerField(min_value=0, max_value=10**15, default=0)
    spend = serializers.DecimalField(**MONEY, min_value=Decimal(0), default=Decimal(0))
    revenue = serializers.DecimalField(**MONEY, min_value=Decimal(0), default=Decimal(0))

    def validate(self, data):
        workspace = self.context["workspace"]
        lookups = self.context.setdefault("lookups", {})
        key = ("campaign", data["campaign"])
        if key not in lookups:
            lookups[key] = (
                Campaign.objects.filter(workspace=workspace, pk=data["campaign"]).select_related("workspace").first()
            )
        campaign = lookups[key]
        if campaign is None:
            raise serializers.ValidationError(
                {"campaign": "No such campaign in this workspace."}, code=CommonErrorCode.DOES_NOT_EXIST
            )
        data["campaign"] = campaign
        target_id = data.pop("target", None)
        data["target"] = None
        if target_id is not None:
            key = ("target", campaign.pk, target_id)
            if key not in lookups:
                lookups[key] = Target.objects.filter(campaign=campaign, pk=target_id).first()
            data["target"] = lookups[key]
            if data["target"] is None:
                raise serializers.ValidationError(
                    {"target": "No such target in this campaign."}, code=CommonErrorCode.DOES_NOT_EXIST
                )
        return data


class FiguresInput(StrictInput, serializers.Serializer):
    figures = ListField(child=serializers.DictField(), allow_empty=False, max_length=1000)


class FiguresBatch(StrictInput, serializers.Serializer):
    """A batch of daily delivery figures, 1 to 1,000 rows; a bad row is named by its position."""

    # The schema's view of FiguresInput: the view validates each row on its own, as a FigureInput.
    figures = FigureInput(many=True, max_length=1000, min_length=1)  # type: ignore[call-arg]


class FiguresOutput(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    ids = ListField(child=serializers.IntegerField())


class FigureOutput(serializers.ModelSerializer):
    class Meta:
        model = DeliveryFigure
        fields = [
            "id",
            "campaign",
            "target",
            "channel",
            "day",
            "source",
            "impressions",
            "clicks",
            "conversions",
            "spend",
            "revenue",
            "booked_spend",
            "revision",
            "received_at",
            "updated_at",
        ]


class CommaList(serializers.CharField):
    """`1,2,3` or `email,sms` in a query string."""

    def __init__(self, *, child, **kwargs):
        self.child = child
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        text = super().to_internal_value(data)
        items = [item.strip() for item in text.split(",") if item.strip()]
        if len(items) > 100:
            raise serializers.ValidationError(gettext("At most 100 values."), code=CommonErrorCode.INVALID)
        return [self.child.run_validation(item) for item in items]


class ReportParameters(serializers.Serializer):
    # Lists: comma lists in a query string here, JSON lists in a job's body (ReportJobInput).
    campaign: serializers.Field = CommaList(
        child=serializers.IntegerField(min_value=1), required=False, help_text="Campaign ids."
    )
    segment: serializers.Field = CommaList(
        child=serializers.IntegerField(min_value=1), required=False, help_text="Segment ids."
    )
    target: serializers.Field = CommaList(
        child=serializers.IntegerField(min_value=1), required=False, help_text="Target ids."
    )
    channel: serializers.Field = CommaList(
        child=serializers.ChoiceField(choices=CampaignChannel.choices), required=False
    )
    date_from = BoundedDateField(required=False)
    date_to = BoundedDateField(required=False)
    group_by: serializers.Field = CommaList(
        child=serializers.ChoiceField(choices=GROUPS), required=False, help_text=f"Among {', '.join(GROUPS)}."
    )
    basis = serializers.ChoiceField(
        choices=ConversionBasis.choices, default="attributed", help_text="Which conversions the KPIs use."
    )

    def validate(self, data):
        if (
            data.get("date_from")
            and data.get("date_to")
            and (data["date_to"] - data["date_from"]) > timedelta(days=3660)
        ):
            raise serializers.ValidationError({"date_to": "At most ten years at once."}, code=CommonErrorCode.INVALID)
        return data

    def query_kwargs(self) -> dict:
        data = self.validated_data
        return {
            "campaigns": data.get("campaign", []),
            "segments": data.get("segment", []),
            "targets": data.get("target", []),
            "channels": data.get("channel", []),
            "date_from": data.get("date_from"),
            "date_to": data.get("date_to"),
            "group_by": data.get("group_by", []),
            "basis": data["basis"],
        }


class ReportJobInput(ReportParameters):
    campaign = ListField(child=serializers.IntegerField(min_value=1), required=False, max_length=100)
    segment = ListField(child=serializers.IntegerField(min_value=1), required=False, max_length=100)
    target = ListField(child=serializers.IntegerField(min_value=1), required=False, max_length=100)
    channel = ListField(child=serializers.ChoiceField(choices=CampaignChannel.choices), required=False, max_length=20)
    group_by = UniqueListField(child=serializers.ChoiceField(choices=GROUPS), required=False, max_length=5)


class QueuedOutput(serializers.Serializer):
    queued = serializers.BooleanField(help_text="The roll-up is queued; a worker runs it.")


class ReportRow(serializers.Serializer):
    day = DateField(allow_null=True)
    campaign = serializers.IntegerField(allow_null=True)
    target = serializers.IntegerField(allow_null=True)
    segment = serializers.IntegerField(allow_null=True)
    channel = CharField(allow_null=True)
    campaign_name = CharField(allow_null=True)
    segment_name = CharField(allow_null=True)
    impressions = serializers.IntegerField()
    clicks = serializers.IntegerField()
    spend = serializers.DecimalField(**MONEY)
    sends = serializers.IntegerField()
    reach = serializers.IntegerField()
    frequency = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)
    conversions = serializers.IntegerField()
    revenue = serializers.DecimalField(**MONEY)
    attributed_conversions = serializers.IntegerField()
    attributed_revenue = serializers.DecimalField(**MONEY)
    reported_conversions = serializers.IntegerField()
    reported_revenue = serializers.DecimalField(**MONEY)
    ctr = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)
    cpm = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)
    cpc = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)
    cvr = serializers.DecimalField(max_digits=20, decimal_places=6, allow_null=True)
    cpa = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)
    roas = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)


class ReportOutput(serializers.Serializer):
    rows = ReportRow(many=True)
    totals = ReportRow()


class ReportJobOutput(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ReportJob
        fields = ["id", "parameters", "status", "rows", "error", "created_at", "finished_at", "download_url"]

    def get_download_url(self, job) -> str | None:
        request = self.context.get("request")
        if job.status != ReportJob.Status.DONE or request is None:
            return None
        return request.build_absolute_uri(
            reverse("report-job-download", kwargs={"workspace": job.workspace.slug, "pk": job.pk})
        )


class RollupInput(StrictInput, serializers.Serializer):
    full = BooleanField(default=False, help_text="Recompute every roll-up row, not only what changed.")
    reattribute = BooleanField(
        default=False, help_text="Attribute every order again (new windows do it by themselves)."
    )


class AttributionSettingsIO(StrictInput, serializers.ModelSerializer):
    updated_at = DateTimeField(read_only=True, allow_null=True, help_text="Null until first changed.")

    class Meta:
        model = AttributionSettings
        fields = ["click_window", "view_window", "updated_at"]
        read_only_fields = ["updated_at"]
