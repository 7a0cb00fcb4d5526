from rest_framework import serializers

from audiences.models import Audience, AudienceExport, AudienceRun
from core.serializers import CharField, StrictInput
from segments.api.serializers import SegmentOutput


class AudienceOutput(serializers.ModelSerializer):
    class Meta:
        model = Audience
        fields = ["status", "current_version", "size", "contactable", "computed_at", "requested_at", "lease_expires_at"]


class SegmentWithAudienceOutput(SegmentOutput):
    audience = AudienceOutput(read_only=True)

    class Meta(SegmentOutput.Meta):
        fields = [*SegmentOutput.Meta.fields[:-2], "audience", *SegmentOutput.Meta.fields[-2:]]


class AudienceRunOutput(serializers.ModelSerializer):
    class Meta:
        model = AudienceRun
        fields = [
            "id",
            "version",
            "status",
            "trigger",
            "requested_by",
            "started_at",
            "finished_at",
            "duration_ms",
            "size",
            "added",
            "removed",
            "error",
        ]


class ExportOutput(serializers.ModelSerializer):
    class Meta:
        model = AudienceExport
        fields = [
            "id",
            "segment",
            "purpose",
            "channel",
            "format",
            "identifiers",
            "status",
            "audience_version",
            "audience_size",
            "row_count",
            "error",
            "created_by",
            "created_at",
            "finished_at",
        ]


class ExportInput(StrictInput, serializers.Serializer):
    purpose = CharField()
    channel = CharField()
    format = serializers.ChoiceField(choices=AudienceExport.Format.choices, default=AudienceExport.Format.CSV)
    identifiers = serializers.ChoiceField(
        choices=AudienceExport.Identifiers.choices, default=AudienceExport.Identifiers.HASHED
    )
