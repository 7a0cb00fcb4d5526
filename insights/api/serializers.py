from django.utils.translation import gettext
from rest_framework import serializers

from core.errors import CommonErrorCode
from core.serializers import BooleanField, CharField, DateTimeField, StrictInput
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
from segments.api.serializers import WorkspaceSegmentField


class JobOutput(serializers.ModelSerializer):
    class Meta:
        model = InsightJob
        fields = [
            "id",
            "kind",
            "subject_id",
            "params",
            "status",
            "progress",
            "step",
            "error",
            "result",
            "created_at",
            "started_at",
            "finished_at",
        ]


class FeatureSetOutput(serializers.ModelSerializer):
    columns = serializers.SerializerMethodField(help_text="The features: [{name, facet, label, kind}].")

    class Meta:
        model = FeatureSet
        fields = ["version", "as_of", "profiles", "refreshed", "full", "duration_ms", "columns"]

    def get_columns(self, feature_set: FeatureSet) -> list[dict]:
        return [{k: column[k] for k in ("name", "facet", "label", "kind")} for column in feature_set.definition]


class FeaturesRefreshInput(StrictInput, serializers.Serializer):
    full = BooleanField(default=False, help_text="Rebuild every profile, not only those that changed.")


class RfmRunOutput(serializers.ModelSerializer):
    class Meta:
        model = RfmRun
        fields = [
            "id",
            "version",
            "as_of",
            "status",
            "customers",
            "boundaries",
            "distribution",
            "migration",
            "previous",
            "created_at",
        ]


class ClvRunOutput(serializers.ModelSerializer):
    class Meta:
        model = ClvRun
        fields = [
            "id",
            "version",
            "as_of",
            "status",
            "unit",
            "horizon_months",
            "discount_rate",
            "purchase_days",
            "holdout_days",
            "customers",
            "parameters",
            "standard_errors",
            "estimation",
            "frequency_value_correlation",
            "holdout",
            "deciles",
            "error",
            "previous",
            "created_at",
        ]


class ClvRunInput(StrictInput, serializers.ModelSerializer):
    as_of = DateTimeField(required=False, help_text="Fit and score as of this moment (default: now).")

    class Meta:
        model = ClvRun
        fields = ["as_of", "unit", "horizon_months", "discount_rate", "purchase_days", "holdout_days"]
        extra_kwargs = {name: {"required": False} for name in fields}


class ClvScoreOutput(serializers.ModelSerializer):
    class Meta:
        model = ClvScore
        fields = ["profile", "run", *ClvScore.MEASURES]


class RfmRunInput(StrictInput, serializers.Serializer):
    as_of = DateTimeField(required=False, help_text="Score as of this moment (default: now).")


class RfmSegmentIO(StrictInput, serializers.ModelSerializer):
    class Meta:
        model = RfmSegment
        fields = [
            "id",
            "code",
            "name",
            "description",
            "position",
            "r_min",
            "r_max",
            "f_min",
            "f_max",
            "m_min",
            "m_max",
        ]
        read_only_fields = ["id", "code"]


class PersonaOutput(serializers.ModelSerializer):
    class Meta:
        model = Persona
        fields = [
            "id",
            "number",
            "name",
            "named_by_user",
            "segment",
            "run",
            "size",
            "share",
            "centroid",
            "profile",
            "active",
        ]


class PersonaNameInput(StrictInput, serializers.Serializer):
    name = CharField(max_length=120)


class PersonaRunOutput(serializers.ModelSerializer):
    class Meta:
        model = PersonaRun
        fields = [
            "id",
            "version",
            "status",
            "facets",
            "columns",
            "k",
            "k_chosen_by",
            "k_scores",
            "inertia",
            "silhouette",
            "stability_ari",
            "drift",
            "profiles",
            "previous",
            "created_at",
        ]


class PersonaRunInput(StrictInput, serializers.Serializer):
    facets = serializers.ChoiceField(choices=PersonaRun.Facets.choices, default=PersonaRun.Facets.ALL)
    k = serializers.IntegerField(
        required=False, allow_null=True, min_value=2, max_value=20, help_text="Omit to have k suggested by silhouette."
    )


class ModelOutput(serializers.ModelSerializer):
    class Meta:
        model = PredictiveModel
        fields = [
            "id",
            "kind",
            "name",
            "segment",
            "horizon_days",
            "pu_correction",
            "status",
            "version",
            "trained_at",
            "metrics",
            "curve",
            "importances",
            "excluded",
            "threshold",
            "error",
            "created_at",
        ]


class ModelInput(StrictInput, serializers.ModelSerializer):
    segment = WorkspaceSegmentField(
        required=False, allow_null=True, help_text="Membership: the segment whose members the model learns."
    )

    class Meta:
        model = PredictiveModel
        fields = ["kind", "name", "segment", "horizon_days", "pu_correction"]
        extra_kwargs = {"name": {"required": False}}
        validators: list = []  # the service checks the subject and uniqueness with the workspace


_MODEL_COMMON = {
    "name": {
        "type": "string",
        "minLength": 1,
        "maxLength": 120,
        "pattern": r"^[^\x00]*\S[^\x00]*$",
        "description": "Named after its subject when not given.",
    },
    "pu_correction": {"type": "string", "enum": list(PredictiveModel.Correction.values)},
}
# A model's subject depends on its kind: a membership model learns a segment, a purchase or churn
# model a horizon. Said as a union, so that a client sends one or the other.
MODEL_INPUT_SCHEMA = {
    "x-body-required": True,
    "oneOf": [
        {
            "type": "object",
            "description": "A membership model: who resembles the members of a segment.",
            "properties": {
                "kind": {"type": "string", "enum": [PredictiveModel.Kind.MEMBERSHIP.value]},
                "segment": {"type": "integer", "minimum": 1, "description": "The segment whose members it learns."},
                **_MODEL_COMMON,
            },
            "required": ["kind", "segment"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "description": "A purchase or churn propensity over the next horizon_days.",
            "properties": {
                "kind": {
                    "type": "string",
                    "enum": [PredictiveModel.Kind.PURCHASE.value, PredictiveModel.Kind.CHURN.value],
                },
                "horizon_days": {"type": "integer", "minimum": 1, "maximum": 365},
                **_MODEL_COMMON,
            },
            "required": ["kind", "horizon_days"],
            "additionalProperties": False,
        },
    ],
}
THRESHOLD_INPUT_SCHEMA = {
    "x-body-required": True,
    "oneOf": [
        {
            "type": "object",
            "properties": {"reach": {"type": "integer", "minimum": 1, "maximum": 10**9}},
            "required": ["reach"],
            "additionalProperties": False,
            "description": "At most this many profiles.",
        },
        {
            "type": "object",
            "properties": {"precision": {"type": "number", "minimum": 0, "maximum": 1}},
            "required": ["precision"],
            "additionalProperties": False,
            "description": "At least this precision.",
        },
    ],
}


class ThresholdInput(StrictInput, serializers.Serializer):
    reach = serializers.IntegerField(
        required=False, min_value=1, max_value=10**9, help_text="At most this many profiles."
    )
    precision = serializers.FloatField(required=False, min_value=0, max_value=1, help_text="At least this precision.")

    def validate(self, attrs):
        if ("reach" in attrs) == ("precision" in attrs):
            raise serializers.ValidationError(gettext("Give either reach or precision."), code=CommonErrorCode.INVALID)
        return attrs


class CurveRowOutput(serializers.Serializer):
    threshold = serializers.FloatField()
    reach = serializers.IntegerField()
    precision = serializers.FloatField(allow_null=True)
    recall = serializers.FloatField()


class LookalikeOutput(serializers.ModelSerializer):
    class Meta:
        model = Lookalike
        fields = [
            "id",
            "seed",
            "purpose",
            "channel",
            "model",
            "status",
            "version",
            "eligible",
            "bands",
            "evaluation",
            "computed_at",
            "error",
            "created_at",
        ]


class LookalikeInput(StrictInput, serializers.ModelSerializer):
    seed = WorkspaceSegmentField(help_text="The segment whose members the lookalikes resemble.")

    class Meta:
        model = Lookalike
        fields = ["seed", "purpose", "channel"]
        validators: list = []
