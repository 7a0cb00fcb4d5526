from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api.base import ReadOnlyWorkspaceViewSet
from audiences.api import serializers as s
from audiences.api.serializers import ExportInput, ExportOutput
from audiences.exports import export_file_response, export_request
from audiences.models import AudienceExport, AudienceMember, AudienceRun
from audiences.services import audience_refresh_request, segment_freeze
from core.api import FilterSet, PagesOrKeyset
from core.lean import accepts_json, encoded_page
from customers.api.lean import profile_plan
from customers.api.serializers import ProfileOutput
from customers.models import Profile
from segments.api import views as segment_views
from segments.api.serializers import SegmentInput


class ExportFilter(FilterSet):
    class Meta:
        model = AudienceExport
        fields = ["segment", "purpose", "channel", "status", "created_by"]


class ExportViewSet(ReadOnlyWorkspaceViewSet):
    """The log of audience exports (who, when, how many), and their files."""

    model = AudienceExport
    serializer_class = ExportOutput
    filterset_class = ExportFilter
    ordering_fields = ["created_at", "id"]

    @extend_schema(
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "application/x-ndjson"): OpenApiTypes.BINARY,
        },
        description="The export's file: CSV, or JSON lines (one object a line) for a JSON export.",
    )
    @action(detail=True, methods=["get"])
    def download(self, request, *args, **kwargs):
        return export_file_response(export=self.get_object(), role=self.role, by=self.request.user)


@extend_schema_view(
    create=extend_schema(request=SegmentInput, responses={201: s.SegmentWithAudienceOutput}),
    update=extend_schema(request=SegmentInput, responses=s.SegmentWithAudienceOutput),
    partial_update=extend_schema(request=SegmentInput, responses=s.SegmentWithAudienceOutput),
)
class SegmentViewSet(segment_views.SegmentViewSet):
    """Segments: rules over the customer 360 view (or a static list), and their computed audience."""

    output_serializer = s.SegmentWithAudienceOutput

    def scoped_queryset(self, queryset):
        return super().scoped_queryset(queryset).select_related("audience")

    @extend_schema(request=None, responses={202: s.SegmentWithAudienceOutput})
    @action(detail=True, methods=["post"])
    def refresh(self, request, *args, **kwargs):
        """Queue a recomputation of the audience (a no-op while one is queued or running)."""
        segment = self.get_object()
        audience_refresh_request(segment=segment, trigger="api", by=request.user)
        return Response(self._output(segment), status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=s.AudienceRunOutput(many=True))
    @action(detail=True, methods=["get"], filterset_class=None, ordering_fields=None)
    def runs(self, request, *args, **kwargs):
        """The audience's computation history, newest first."""
        runs = AudienceRun.objects.filter(audience__segment=self.get_object())
        page = self.paginate_queryset(runs)
        return self.get_paginated_response(s.AudienceRunOutput(page, many=True).data)

    @extend_schema(responses=ProfileOutput(many=True))
    @action(detail=True, methods=["get"], filterset_class=None, ordering_fields=None, pagination_class=PagesOrKeyset)
    def members(self, request, *args, **kwargs):
        """The members of the current audience version."""
        segment = self.get_object()
        audience = segment.audience
        ids = AudienceMember.objects.current_of(audience).values("profile_id")
        members = Profile.objects.filter(workspace=self.workspace, pk__in=ids).order_by("pk")
        if not accepts_json(request):
            page = self.paginate_queryset(members)
            return self.get_paginated_response(ProfileOutput(page, many=True).data)
        plan = profile_plan()
        return encoded_page(self, members.values(*plan.columns), plan.rows)

    @extend_schema(request=ExportInput, responses={202: ExportOutput})
    @action(detail=True, methods=["post"])
    def export(self, request, *args, **kwargs):
        """Export the current audience for a purpose and channel: consented members only, at export time."""
        data = ExportInput(data=request.data)
        data.is_valid(raise_exception=True)
        export = export_request(segment=self.get_object(), by=request.user, role=self.role, **data.validated_data)
        export.refresh_from_db()
        return Response(ExportOutput(export).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=s.SegmentWithAudienceOutput)
    @action(detail=True, methods=["post"])
    def freeze(self, request, *args, **kwargs):
        """Make the segment a static list of its current members."""
        segment = segment_freeze(segment=self.get_object(), by=request.user)
        return Response(self._output(segment))
