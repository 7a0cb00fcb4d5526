from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.serializers import BooleanField, CharField, DateTimeField, JSONField, ListField, StrictInput
from customers.api.serializers import ProfileOutput
from segments.models import Segment, SegmentAnalysis


class WorkspaceSegmentField(serializers.PrimaryKeyRelatedField):
    """A segment id of the caller's workspace only: another workspace's id does not exist."""

    def get_queryset(self):
        workspace = self.context.get("workspace")
        return Segment.objects.filter(workspace=workspace) if workspace else Segment.objects.none()


class SegmentOutput(serializers.ModelSerializer):
    depends_on = serializers.PrimaryKeyRelatedField[Segment](many=True, read_only=True)

    class Meta:
        model = Segment
        fields = [
            "id",
            "name",
            "description",
            "kind",
            "definition",
            "refresh_every",
            "depends_on",
            "owner",
            "created_at",
            "updated_at",
        ]


@extend_schema_field({"$ref": "#/components/schemas/RuleNode"})
class RuleField(JSONField):
    """A definition in the rule language: typed in the schema as RuleNode (segments.schema),
    validated by segments.rules against the workspace."""


class SegmentInput(StrictInput, serializers.ModelSerializer):
    definition = RuleField(required=False, allow_null=True, help_text="The rules; see the rule language.")

    class Meta:
        model = Segment
        fields = ["name", "description", "kind", "definition", "refresh_every"]
        validators: list[Callable[..., Any]] = []  # the service checks uniqueness and the rules with the workspace


@extend_schema_field(
    {
        "anyOf": [
            {"type": "string", "format": "date", "pattern": r"^(19\d\d|2\d\d\d)-"},
            {"type": "string", "format": "date-time", "pattern": r"^(19\d\d|2\d\d\d)-"},
            {"type": "string", "maxLength": 0},
        ],
        "maxLength": 40,
    }
)
class MomentField(CharField):
    """A date (the end of that day in the workspace's calendar) or a date-time; empty: now."""


class DefinitionInput(StrictInput, serializers.Serializer):
    definition = RuleField()
    as_of = MomentField(
        required=False,
        allow_blank=True,
        max_length=40,
        help_text=(
            "Evaluate the rules at a past moment: a date (YYYY-MM-DD, the end of that day in the "
            "workspace's time zone) or an ISO 8601 date-time. Events and orders after it are ignored."
        ),
    )


class PreviewOutput(serializers.Serializer):
    count = serializers.IntegerField()
    base = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True)
    sample = ProfileOutput(many=True)
    as_of = DateTimeField(help_text="The moment the rules were evaluated at.")


class DefinitionPreviewOutput(PreviewOutput):
    sentence = CharField(help_text="The rules read back in the user's language (Accept-Language).")
    hints = ListField(
        child=CharField(),
        help_text="For each place name no profile has (accents and case aside), the values it was probably meant to be.",
    )


class EstimateInput(StrictInput, serializers.Serializer):
    definition = RuleField()


class EstimateOutput(serializers.Serializer):
    estimated = BooleanField(
        help_text="True: counted on the fixed sample of the base, within the interval; false: the exact count "
        "(a base small enough to count it as quickly)."
    )
    count = serializers.IntegerField()
    low = serializers.IntegerField(help_text="The 95 % interval's low end (the count itself when exact).")
    high = serializers.IntegerField(help_text="The 95 % interval's high end (the count itself when exact).")
    base = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True)
    sampled = serializers.IntegerField(allow_null=True, help_text="The profiles sampled; null when exact.")


class ValuesInput(StrictInput, serializers.Serializer):
    field = serializers.ChoiceField(
        choices=["city", "region", "country", "postal_code", "item.category", "item.sku"],
        help_text="A profile field, or the category or product (sku) of the line items ordered over the last year.",
    )
    q = CharField(required=False, allow_blank=True, default="", max_length=200)


class ValueCount(serializers.Serializer):
    value = CharField()
    count = serializers.IntegerField()


class ValuesOutput(serializers.Serializer):
    values = ValueCount(many=True)


class ManualMembersInput(StrictInput, serializers.Serializer):
    add = ListField(child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=10_000)
    remove = ListField(child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=10_000)


class ManualMembersOutput(serializers.Serializer):
    included = serializers.IntegerField()
    excluded = serializers.IntegerField()


class AnalyseInput(StrictInput, serializers.Serializer):
    min_index = serializers.FloatField(required=False, default=120.0, min_value=0)
    min_count = serializers.IntegerField(required=False, default=100, min_value=0)
    min_abs_z = serializers.FloatField(required=False, default=2.0, min_value=0)


class IndexRowOutput(serializers.Serializer):
    criterion = CharField()
    value = CharField()
    n_seg = serializers.IntegerField()
    p_seg = serializers.FloatField()
    n_base = serializers.IntegerField()
    p_base = serializers.FloatField()
    index = serializers.FloatField(allow_null=True)
    z = serializers.FloatField(allow_null=True)
    excess = serializers.FloatField()
    over_represented = BooleanField()
    # Named like Field.label: DRF's metaclass takes declared fields off the class; the stubs only see an override.
    label = CharField(required=False, help_text="What a marketer reads: `Gender: Female`.")  # type: ignore[assignment]
    defining = BooleanField(
        required=False, help_text="The segment's own rules constrain it: a definition, not a finding (never ranked)."
    )
    rule = RuleField(required=False, allow_null=True, help_text="The rule that selects these people.")


class AnalysisOutput(serializers.ModelSerializer):
    rows = IndexRowOutput(many=True)
    empty_reason = serializers.SerializerMethodField(help_text="Why no row is over-represented, when none is.")

    @extend_schema_field(CharField(allow_blank=True))
    def get_empty_reason(self, obj) -> str:
        if obj.status != SegmentAnalysis.Status.READY or any(row["over_represented"] for row in obj.rows):
            return ""
        if obj.segment_size < obj.min_count:
            return (
                f"The segment has {obj.segment_size} members, fewer than the minimum count ({obj.min_count}) a "
                "criterion needs to be over-represented: lower min_count or analyse a larger segment."
            )
        if not obj.rows:
            return "The base holds no data for any criterion yet."
        return "No criterion outside the segment's own rules passes the thresholds (index, count and z)."

    class Meta:
        model = SegmentAnalysis
        fields = [
            "status",
            "audience_version",
            "segment_size",
            "base_size",
            "min_index",
            "min_count",
            "min_abs_z",
            "rows",
            "empty_reason",
            "error",
            "requested_at",
            "computed_at",
        ]


class SuggestionCriterion(serializers.Serializer):
    criterion = CharField()
    value = CharField()
    label = CharField(allow_null=True)  # type: ignore[assignment]  # like IndexRowOutput.label
    index = serializers.FloatField(allow_null=True)
    n_seg = serializers.IntegerField()
    excess = serializers.FloatField()


class SuggestionStep(serializers.Serializer):
    added = CharField(help_text="The criterion added at this step (any of the criteria so far).")
    size = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True, help_text="Share of the base.")
    precision = serializers.FloatField(allow_null=True, help_text="Share of the draft's people in the segment.")
    coverage = serializers.FloatField(allow_null=True, help_text="Share of the segment's members in the draft.")
    index = serializers.FloatField(allow_null=True, help_text="Precision over the segment's share of the base, x100.")


class SuggestionOutput(serializers.Serializer):
    definition = RuleField(allow_null=True)
    criteria = SuggestionCriterion(many=True)
    steps = SuggestionStep(many=True, help_text="The trade-off of each criterion, as it is added.")
    size = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True)
    precision = serializers.FloatField(allow_null=True, help_text="Share of the draft's people in the segment.")
    coverage = serializers.FloatField(allow_null=True, help_text="Share of the segment's members in the draft.")
    reach = serializers.FloatField(allow_null=True, help_text="The coverage, under its former name.")
    index = serializers.FloatField(allow_null=True)
    max_share = serializers.FloatField(help_text="The largest share of the base a suggestion may cover.")
    reason = CharField(allow_blank=True, help_text="Why there is no suggestion, or what was left out.")


class OverlapOutput(serializers.Serializer):
    segment = serializers.IntegerField()
    other = serializers.IntegerField()
    segment_size = serializers.IntegerField()
    other_size = serializers.IntegerField()
    both = serializers.IntegerField()
    jaccard = serializers.FloatField(allow_null=True)


class StaticListInput(StrictInput, serializers.Serializer):
    file = serializers.FileField(help_text="CSV with one column, external_id or email, and a header row.")


class StaticListOutput(serializers.Serializer):
    rows = serializers.IntegerField()
    matched = serializers.IntegerField()
    unmatched = serializers.IntegerField()
