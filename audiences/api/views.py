import django_filters
from django.core.exceptions import PermissionDenied
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound

from accounts.api.base import ReadOnlyWorkspaceViewSet
from accounts.roles import Capability, role_can
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
        export = self.get_object()
        if export.identifiers == AudienceExport.Identifiers.PLAIN and not role_can(self.role, Capability.EXPORT_PLAIN):
            raise PermissionDenied("Your role may not download plain identifiers.")
        if export.status != AudienceExport.Status.READY or not export.file:
            raise NotFound("This export has no file (yet).")
        content_type = "text/csv" if export.format == AudienceExport.Format.CSV else "application/x-ndjson"
        return FileResponse(
            export.file.open("rb"),
            as_attachment=True,
            filename=export.file.name.rsplit("/", 1)[-1],
            content_type=content_type,
        )
