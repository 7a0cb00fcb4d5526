import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action

from accounts.api.base import ReadOnlyWorkspaceViewSet
from audiences.exports import export_file_response
from audiences.models import AudienceExport


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


class ExportInput(serializers.Serializer):
    purpose = serializers.CharField()
    channel = serializers.CharField()
    format = serializers.ChoiceField(choices=AudienceExport.Format.choices, default=AudienceExport.Format.CSV)
    identifiers = serializers.ChoiceField(
        choices=AudienceExport.Identifiers.choices, default=AudienceExport.Identifiers.HASHED
    )


class ExportFilter(django_filters.FilterSet):
    class Meta:
        model = AudienceExport
        fields = ["segment", "purpose", "channel", "status", "created_by"]


class ExportViewSet(ReadOnlyWorkspaceViewSet):
    """The log of audience exports (who, when, how many), and their files."""

    model = AudienceExport
    serializer_class = ExportOutput
    filterset_class = ExportFilter
    ordering_fields = ["created_at", "id"]

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, *args, **kwargs):
        return export_file_response(self.get_object(), role=self.role, by=self.request.user)
