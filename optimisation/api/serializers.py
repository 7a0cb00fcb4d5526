from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns.api.serializers import WorkspaceDateTimeField
from campaigns.models import MONEY, Campaign
from core.errors import CommonErrorCode
from core.serializers import BooleanField, CharField, DateField, JSONField, StrictInput
from optimisation.models import RULE_FIELDS, Rule, RuleEvaluation
from optimisation.rules import KPIS, OPERATORS, SUMS, THRESHOLD_MAX_TEXT, THRESHOLD_PATTERN, rule_check


class WorkspaceCampaignField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        workspace = self.context.get("workspace")
        return Campaign.objects.filter(workspace=workspace) if workspace else Campaign.objects.none()


CONDITION_SCHEMA = {
    "type": "object",
    "properties": {
        "kpi": {"type": "string", "enum": [*KPIS, *SUMS]},
        "days": {"type": "integer", "minimum": 1, "maximum": 90, "default": 7},
        "operator": {"type": "string", "enum": sorted(OPERATORS)},
        "threshold": {
            "description": "A number; answered as a decimal string.",
            "anyOf": [
                {"type": "number", "minimum": -(2**63), "maximum": 2**63 - 1},
                {"type": "string", "maxLength": THRESHOLD_MAX_TEXT, "pattern": THRESHOLD_PATTERN},
            ],
        },
    },
    "required": ["kpi", "operator", "threshold"],
    "additionalProperties": False,
}


@extend_schema_field({"type": "array", "items": CONDITION_SCHEMA, "minItems": 1, "maxItems": 10})
class ConditionsField(JSONField):
    """A rule's conditions: 1 to 10, all must hold."""


class RuleIO(StrictInput, serializers.ModelSerializer):
    campaign = WorkspaceCampaignField(allow_null=True, required=False)
    conditions = ConditionsField()
    notify_secret = CharField(write_only=True, required=False, allow_blank=True, max_length=200)
    next_run_at = WorkspaceDateTimeField(read_only=True, allow_null=True, help_text="Empty while disabled.")
    last_run_at = WorkspaceDateTimeField(read_only=True, allow_null=True, help_text="Empty until it first runs.")

    class Meta:
        model = Rule
        fields = ["id", *RULE_FIELDS, "next_run_at", "last_run_at", "created_at"]
        read_only_fields = ["id", "next_run_at", "last_run_at", "created_at"]

    def validate(self, data):
        workspace = self.context["workspace"]
        name = data.get("name", getattr(self.instance, "name", None))
        clash = Rule.objects.filter(workspace=workspace, name=name)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError({"name": "A rule with this name exists."}, code=CommonErrorCode.UNIQUE)
        probe = Rule(workspace=workspace)
        if self.instance is not None:
            for field in self.Meta.fields:
                if hasattr(self.instance, field) and field not in ("id",):
                    setattr(probe, field, getattr(self.instance, field))
        for field, value in data.items():
            setattr(probe, field, value)
        rule_check(rule=probe)
        data["conditions"] = probe.conditions
        return data


class RuleEvaluationOutput(serializers.ModelSerializer):
    at = WorkspaceDateTimeField()

    class Meta:
        model = RuleEvaluation
        fields = ["id", "rule", "campaign", "at", "source", "seen", "matched", "outcome", "action", "detail"]


class RulePreviewOutput(serializers.Serializer):
    campaign = serializers.IntegerField()
    campaign_name = CharField()
    conditions = JSONField()
    guard = JSONField()
    guarded = BooleanField()
    matched = BooleanField()
    would_act = BooleanField()
    action = CharField()
    plan = CharField()


class ReallocationParameters(serializers.Serializer):
    metric = serializers.ChoiceField(choices=["roas", "cpa", "incremental_roas"], default="roas")
    days = serializers.IntegerField(min_value=1, max_value=90, default=7)
    min_share = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=Decimal(0), max_value=Decimal(100), default=Decimal(10)
    )
    learning_conversions = serializers.IntegerField(min_value=0, max_value=100000, default=5)
    basis = serializers.ChoiceField(choices=Rule.Basis.choices, default="attributed")


class ReallocationApply(StrictInput, ReallocationParameters):
    reason = CharField(required=False, allow_blank=True, max_length=500, default="")


class ReallocationTarget(serializers.Serializer):
    target = serializers.IntegerField()
    name = CharField()
    spend = serializers.DecimalField(**MONEY)
    conversions = serializers.IntegerField()
    revenue = serializers.DecimalField(**MONEY)
    roas = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)
    cpa = serializers.DecimalField(max_digits=20, decimal_places=4, allow_null=True)
    learning = BooleanField()
    share = serializers.DecimalField(max_digits=5, decimal_places=2)
    new_share = serializers.DecimalField(max_digits=5, decimal_places=2)
    change = serializers.DecimalField(max_digits=6, decimal_places=2)


class ReallocationOutput(serializers.Serializer):
    metric = CharField()
    days = serializers.IntegerField()
    since = DateField()
    min_share = serializers.DecimalField(max_digits=5, decimal_places=2)
    learning_conversions = serializers.IntegerField()
    targets = ReallocationTarget(many=True)
    moves = serializers.IntegerField()
