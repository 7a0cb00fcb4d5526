from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from accounts.api.base import WorkspaceScopedViewSet
from accounts.roles import Capability
from core.api import read_upload
from core.errors import CommonErrorCode
from customers.csv_import import csv_text
from segments import services
from segments.api import serializers as s
from segments.api.filters import SegmentFilter
from segments.errors import SegmentErrorCode
from segments.membership import current_audience
from segments.models import Segment, SegmentAnalysis
from segments.quantification import MAX_SHARE, macro_segment_suggestion, segment_analysis_request
from segments.selectors import bounded, definition_estimate, definition_preview, segment_overlap, segment_preview
from segments.vocabulary import definition_hints, describe, value_suggestions


class SegmentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    WorkspaceScopedViewSet,
):
    """Segments: rules over the customer 360 view (or a static list), manual changes and the index table."""

    model = Segment
    filterset_class = SegmentFilter
    ordering_fields = ["name", "created_at", "updated_at"]
    # Trying rules out changes nothing: viewers may too.
    action_capabilities = {
        "preview_definition": Capability.READ,
        "estimate": Capability.READ,
        "values": Capability.READ,
    }

    # Audiences extend the viewset and its output with the computed audience.
    output_serializer: type[s.SegmentOutput] = s.SegmentOutput

    def scoped_queryset(self, queryset):
        return queryset.prefetch_related("depends_on")

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update"):
            return s.SegmentInput
        return self.output_serializer

    def _output(self, segment: Segment) -> dict:
        return self.output_serializer(self.get_queryset().get(pk=segment.pk)).data

    def _input(self, request, partial=False) -> dict:
        data = s.SegmentInput(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        return data.validated_data

    @extend_schema(request=s.SegmentInput, responses={201: s.SegmentOutput})
    def create(self, request, *args, **kwargs):
        segment = services.segment_create(workspace=self.workspace, owner=request.user, **self._input(request))
        return Response(self._output(segment), status=status.HTTP_201_CREATED)

    @extend_schema(request=s.SegmentInput, responses=s.SegmentOutput)
    def update(self, request, *args, **kwargs):
        segment = services.segment_update(
            segment=self.get_object(), **self._input(request, kwargs.get("partial", False))
        )
        return Response(self._output(segment))

    @extend_schema(
        responses={
            204: None,
            409: OpenApiResponse(description="Still used: by other segments' rules or by campaigns' targets."),
        }
    )
    def destroy(self, request, *args, **kwargs):
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance):
        services.segment_delete(segment=instance)

    @extend_schema(request=s.DefinitionInput, responses=s.DefinitionPreviewOutput)
    @action(detail=False, methods=["post"], url_path="preview")
    def preview_definition(self, request, *args, **kwargs):
        """Validate unsaved rules and return their count, share of the base and a sample, computed now;
        with the rules read back as a sentence and hints for place names nobody has."""
        data = s.DefinitionInput(data=request.data)
        data.is_valid(raise_exception=True)
        definition = data.validated_data["definition"]
        services.definition_check(workspace=self.workspace, definition=definition)
        as_of = services.as_of_read(raw=data.validated_data.get("as_of"), workspace=self.workspace)
        preview = definition_preview(workspace=self.workspace, definition=definition, as_of=as_of)
        preview["sentence"] = describe(workspace=self.workspace, definition=definition)
        preview["hints"] = definition_hints(workspace=self.workspace, definition=definition)
        return Response(s.DefinitionPreviewOutput(preview).data)

    @extend_schema(request=s.EstimateInput, responses=s.EstimateOutput)
    @action(detail=False, methods=["post"], url_path="estimate")
    def estimate(self, request, *args, **kwargs):
        """How many people unsaved rules select, estimated within a few hundred milliseconds from a
        fixed sample of the base (with its 95 % interval); on a small base, the exact count."""
        data = s.EstimateInput(data=request.data)
        data.is_valid(raise_exception=True)
        definition = data.validated_data["definition"]
        services.definition_check(workspace=self.workspace, definition=definition)
        found = definition_estimate(workspace=self.workspace, definition=definition)
        if found is None:
            exact = definition_preview(workspace=self.workspace, definition=definition, sample=0)
            found = {**exact, "low": exact["count"], "high": exact["count"], "sampled": None, "estimated": False}
        else:
            found["estimated"] = True
        return Response(s.EstimateOutput(found).data)

    @extend_schema(parameters=[s.ValuesInput], responses=s.ValuesOutput)
    @action(detail=False, methods=["get"], url_path="values")
    def values(self, request, *args, **kwargs):
        """Type-ahead: values of a profile field in the workspace that start with (then contain) what
        was typed, accents and case aside, with how many people have each."""
        data = s.ValuesInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        found = value_suggestions(
            workspace=self.workspace, field=data.validated_data["field"], query=data.validated_data["q"]
        )
        return Response(s.ValuesOutput({"values": found}).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "as_of",
                str,
                required=False,
                description="A past date (YYYY-MM-DD, end of that day in the workspace's time zone) or ISO 8601 date-time.",
            )
        ],
        responses=s.PreviewOutput,
    )
    @action(detail=True, methods=["get"], url_path="preview")
    def preview(self, request, *args, **kwargs):
        """The segment's members as they would be computed now, or as of a past moment (rules, static
        list and manual changes)."""
        segment = self.get_object()
        as_of = services.as_of_read(raw=request.query_params.get("as_of"), workspace=self.workspace)
        return Response(s.PreviewOutput(segment_preview(segment=segment, as_of=as_of)).data)

    @extend_schema(request=s.ManualMembersInput, responses=s.ManualMembersOutput)
    @action(detail=True, methods=["post"], url_path="manual-members")
    def manual_members(self, request, *args, **kwargs):
        """Always include or exclude people, whatever the rules say; applied at the next refresh."""
        data = s.ManualMembersInput(data=request.data)
        data.is_valid(raise_exception=True)
        if set(data.validated_data["add"]) & set(data.validated_data["remove"]):
            raise ValidationError(
                {
                    "add": ValidationError(
                        gettext("A profile cannot be both added and removed."), code=CommonErrorCode.CONFLICT
                    )
                }
            )
        result = services.manual_members_set(segment=self.get_object(), by=request.user, **data.validated_data)
        return Response(result)

    @extend_schema(request=s.AnalyseInput, responses={202: s.AnalysisOutput})
    @action(detail=True, methods=["post"])
    def analyse(self, request, *args, **kwargs):
        """Queue the index table of the current audience: which criteria are over-represented."""
        data = s.AnalyseInput(data=request.data)
        data.is_valid(raise_exception=True)
        segment = self.get_object()
        if current_audience(segment=segment) is None:
            raise ValidationError(
                {
                    "non_field_errors": ValidationError(
                        gettext("Compute the audience first."), code=SegmentErrorCode.NO_AUDIENCE
                    )
                }
            )
        analysis = segment_analysis_request(segment=segment, **data.validated_data)
        analysis.refresh_from_db()
        return Response(s.AnalysisOutput(analysis).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=s.AnalysisOutput)
    @action(detail=True, methods=["get"], filterset_class=None, ordering_fields=None, pagination_class=None)
    def analysis(self, request, *args, **kwargs):
        """The latest index table, over-represented rows first, ranked by excess members."""
        analysis = SegmentAnalysis.objects.filter(segment=self.get_object()).first()
        if analysis is None:
            raise NotFound(gettext("This segment has not been analysed yet: POST to its analyse action."))
        return Response(s.AnalysisOutput(analysis).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "max_share",
                {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1},
                required=False,
                description="The largest share of the base the draft may cover, above 0 and at most 1 (default 0.5).",
            )
        ],
        responses=s.SuggestionOutput,
    )
    @action(detail=True, methods=["get"], filterset_class=None, ordering_fields=None, pagination_class=None)
    def suggestion(self, request, *args, **kwargs):
        """A draft macro-segment from the over-represented criteria (never the defining ones), with the
        trade-off of each criterion: size, share of the base, precision, coverage and index."""
        raw = request.query_params.get("max_share", "")
        try:
            max_share = float(raw) if raw else MAX_SHARE
        except ValueError:
            max_share = -1.0
        if not 0 < max_share <= 1:
            raise ValidationError(
                {
                    "max_share": ValidationError(
                        gettext("Give a share of the base above 0 and at most 1, such as 0.3."),
                        code=CommonErrorCode.OUT_OF_RANGE,
                    )
                }
            )
        analysis = SegmentAnalysis.objects.filter(
            segment=self.get_object(), status=SegmentAnalysis.Status.READY
        ).first()
        if analysis is None:
            raise NotFound(gettext("No ready analysis for this segment: POST to its analyse action."))
        with bounded(what="The suggestion", field="non_field_errors"):
            suggestion = macro_segment_suggestion(analysis=analysis, max_share=max_share)
        return Response(s.SuggestionOutput(suggestion).data)

    @extend_schema(
        parameters=[OpenApiParameter("other", int, required=True, description="Id of the other segment.")],
        responses=s.OverlapOutput,
    )
    @action(detail=True, methods=["get"], filterset_class=None, ordering_fields=None, pagination_class=None)
    def overlap(self, request, *args, **kwargs):
        """Members in common with another segment (current audiences) and the Jaccard index."""
        segment = self.get_object()
        raw = request.query_params.get("other", "")
        other = Segment.objects.filter(workspace=self.workspace, pk=int(raw)).first() if raw.isdigit() else None
        if other is None:
            raise ValidationError(
                {
                    "other": ValidationError(
                        gettext("Give the id of a segment of this workspace."), code=CommonErrorCode.DOES_NOT_EXIST
                    )
                }
            )
        return Response(s.OverlapOutput(segment_overlap(segment=segment, other=other)).data)

    @extend_schema(request=s.StaticListInput, responses=s.StaticListOutput)
    @action(detail=True, methods=["post"], url_path="static-list", parser_classes=[MultiPartParser])
    def static_list(self, request, *args, **kwargs):
        """Replace a static segment's list with a CSV of external ids or e-mails; then refresh to apply."""
        data = s.StaticListInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            text = csv_text(read_upload(data.validated_data["file"]))
        except ValidationError as exc:
            raise ValidationError({"file": exc}) from None
        return Response(services.static_list_upload(segment=self.get_object(), text=text, by=request.user))
