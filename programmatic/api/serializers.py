from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.models import Target
from core.serializers import (
    CharField,
    DecimalField,
    FloatField,
    IntegerField,
    ListField,
    RegexField,
    StrictInput,
    UniqueListField,
)
from insights.models import PredictiveModel
from programmatic.models import CPM, BidDay, BidderDay, Creative, LineItem


@extend_schema_field(OpenApiTypes.INT)
class _InWorkspace(serializers.PrimaryKeyRelatedField):
    """An id of the caller's workspace only: another workspace's id does not exist."""

    model: Any = None

    def get_queryset(self):
        workspace = self.context.get("workspace")
        return self.model.objects.filter(workspace=workspace) if workspace else self.model.objects.none()


class TargetField(_InWorkspace):
    model = Target


class ModelField(_InWorkspace):
    model = PredictiveModel


class CreativeField(_InWorkspace):
    model = Creative


class CreativeList(UniqueListField):
    """Creative ids in and out (a many-to-many read through its manager)."""

    def to_representation(self, data):
        return super().to_representation(data.all() if hasattr(data, "all") else data)


class CreativeIO(StrictInput, serializers.ModelSerializer):
    categories = UniqueListField(
        child=RegexField(r"^IAB[0-9]{1,2}(-[0-9]{1,2})?$", max_length=8),
        max_length=50,
        required=False,
        help_text='The ad\'s IAB content categories, e.g. ["IAB22", "IAB3-1"]: exchanges block on them.',
    )
    advertiser_domain = RegexField(
        r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
        max_length=253,
        help_text="The advertiser's domain, lower case (the bid's adomain), e.g. shop.example.",
    )

    class Meta:
        model = Creative
        fields = [
            "id",
            "name",
            "width",
            "height",
            "markup",
            "landing_url",
            "advertiser_domain",
            "categories",
            "active",
            "created_at",
        ]
        validators: list[Any] = []


class CircleIO(StrictInput):
    lat = FloatField(min_value=-90, max_value=90)
    lon = FloatField(min_value=-180, max_value=180)
    km = FloatField(min_value=0.001, max_value=1000, help_text="The radius, in kilometres.")


class AreaIO(StrictInput):
    countries = UniqueListField(
        child=RegexField(r"^[A-Z]{3}$", max_length=3),
        max_length=500,
        required=False,
        help_text="ISO 3166-1 alpha-3 codes, as OpenRTB gives them (FRA, BEL...).",
    )
    regions = ListField(child=CharField(max_length=100), max_length=500, required=False)
    cities = ListField(child=CharField(max_length=100), max_length=500, required=False)
    circles = ListField(child=CircleIO(), max_length=500, required=False)


class LineItemIO(StrictInput, serializers.ModelSerializer):
    target = TargetField(
        help_text="A display target of one of the workspace's campaigns: on a segment, or triggered by an event "
        "(retargeting, e.g. cart abandoned)."
    )
    base_cpm = DecimalField(
        **CPM,
        min_value=Decimal("0.0001"),
        help_text="The bid for a thousand impressions, in the campaign's currency, for a person of value 0.5 (or "
        "anyone, without a value model).",
    )
    min_cpm = DecimalField(**CPM, min_value=Decimal(0))
    max_cpm = DecimalField(**CPM, min_value=Decimal("0.0001"))
    value_model = ModelField(allow_null=True, required=False)
    dayparts = ListField(
        child=ListField(child=IntegerField(min_value=0, max_value=24), min_length=2, max_length=2),
        max_length=24,
        required=False,
        help_text="Hours of the workspace's day when it bids, [start, end) pairs with start < end, e.g. "
        "[[8, 12], [18, 23]]; empty: all day.",
    )
    weekdays = UniqueListField(
        child=IntegerField(min_value=0, max_value=6),
        max_length=7,
        required=False,
        help_text="0 (Monday) to 6; empty: every day.",
    )
    area = AreaIO(required=False, help_text="Where the device is; empty: anywhere.")
    inventory = UniqueListField(
        child=serializers.ChoiceField(choices=LineItem.Inventory.choices),
        max_length=2,
        required=False,
        help_text="Web sites, mobile apps or both (empty: both).",
    )
    creatives = CreativeList(
        child=CreativeField(), max_length=50, required=False, help_text="Ids of the workspace's creatives."
    )

    class Meta:
        model = LineItem
        fields = [
            "id",
            "target",
            "base_cpm",
            "min_cpm",
            "max_cpm",
            "value_model",
            "cap_impressions",
            "cap_hours",
            "dayparts",
            "weekdays",
            "area",
            "inventory",
            "trigger_hours",
            "creatives",
            "created_at",
            "updated_at",
        ]
        validators: list[Any] = []

    def validate(self, data):
        creatives = data.pop("creatives", None)
        instance = LineItem(**{**_fields(self.instance), **data})
        try:
            instance.clean()
        except DjangoValidationError as error:
            raise serializers.ValidationError(serializers.as_serializer_error(error)) from error
        if creatives is not None:
            data["creatives"] = creatives
        return data


def _fields(instance: LineItem | None) -> dict[str, Any]:
    if instance is None:
        return {}
    names = [f.name for f in LineItem._meta.concrete_fields if f.name not in ("id", "created_at", "updated_at")]
    return {name: getattr(instance, name) for name in names}


class BidDayOutput(serializers.ModelSerializer):
    campaign = serializers.IntegerField(source="line_item.target.campaign_id", read_only=True)
    spend = serializers.SerializerMethodField(help_text="Billed spend, in the campaign's currency.")
    ecpm = serializers.SerializerMethodField(help_text="Spend per thousand impressions.")
    win_rate = serializers.SerializerMethodField(help_text="Wins per bid.")

    class Meta:
        model = BidDay
        fields = [
            "line_item",
            "campaign",
            "day",
            "bids",
            "wins",
            "win_rate",
            "impressions",
            "losses",
            "spend",
            "ecpm",
        ]

    def get_spend(self, obj) -> str:
        return f"{obj.spend:.6f}"

    def get_ecpm(self, obj) -> str | None:
        return None if obj.ecpm is None else f"{obj.ecpm:.4f}"

    def get_win_rate(self, obj) -> float | None:
        return obj.win_rate


class BidderDayOutput(serializers.ModelSerializer):
    bid_rate = serializers.SerializerMethodField(help_text="Requests answered with a bid, per request.")

    class Meta:
        model = BidderDay
        fields = ["day", "requests", "bid_requests", "bid_rate", "late", "no_bid"]

    def get_bid_rate(self, obj) -> float | None:
        return obj.bid_rate
