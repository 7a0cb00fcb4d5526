from collections.abc import Callable
from typing import Any

from rest_framework import serializers

from core.serializers import StrictInput
from customers.api.serializers import ProfileOutput
from segments.models import Segment, SegmentAnalysis


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


class SegmentInput(StrictInput, serializers.ModelSerializer):
    definition = serializers.JSONField(required=False, allow_null=True, help_text="The rules; see the rule language.")

    class Meta:
        model = Segment
        fields = ["name", "description", "kind", "definition", "refresh_every"]
        validators: list[Callable[..., Any]] = []  # the service checks uniqueness and the rules with the workspace


class DefinitionInput(StrictInput, serializers.Serializer):
    definition = serializers.JSONField()
    as_of = serializers.CharField(
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
    as_of = serializers.DateTimeField(help_text="The moment the rules were evaluated at.")


class ManualMembersInput(StrictInput, serializers.Serializer):
    add = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=10_000
    )
    remove = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, default=list, max_length=10_000
    )


class ManualMembersOutput(serializers.Serializer):
    included = serializers.IntegerField()
    excluded = serializers.IntegerField()


class AnalyseInput(StrictInput, serializers.Serializer):
    min_index = serializers.FloatField(required=False, default=120.0, min_value=0)
    min_count = serializers.IntegerField(required=False, default=100, min_value=0)
    min_abs_z = serializers.FloatField(required=False, default=2.0, min_value=0)


class IndexRowOutput(serializers.Serializer):
    criterion = serializers.CharField()
    value = serializers.CharField()
    n_seg = serializers.IntegerField()
    p_seg = serializers.FloatField()
    n_base = serializers.IntegerField()
    p_base = serializers.FloatField()
    index = serializers.FloatField(allow_null=True)
    z = serializers.FloatField(allow_null=True)
    excess = serializers.FloatField()
    over_represented = serializers.BooleanField()


class AnalysisOutput(serializers.ModelSerializer):
    rows = IndexRowOutput(many=True)

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
            "error",
            "requested_at",
            "computed_at",
        ]


class SuggestionCriterion(serializers.Serializer):
    criterion = serializers.CharField()
    value = serializers.CharField()
    index = serializers.FloatField(allow_null=True)
    n_seg = serializers.IntegerField()
    excess = serializers.FloatField()


class SuggestionOutput(serializers.Serializer):
    definition = serializers.JSONField(allow_null=True)
    criteria = SuggestionCriterion(many=True)
    size = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True)
    reach = serializers.FloatField(allow_null=True, help_text="Share of the segment's members the draft covers.")


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
