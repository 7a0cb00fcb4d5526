from typing import cast

from django.http import HttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings

from accounts.api.base import WorkspaceScopedViewSet
from accounts.roles import Capability
from campaigns.models import CampaignChannel
from core.api import MAX_ID, ActionsOnlyMetadata, FilterSet
from core.schema import CibleAutoSchema
from reporting.api import serializers as s
from reporting.models import DeliveryFigure, ReportJob
from reporting.reports import (
    GROUPS,
    ReportQuery,
    report_columns,
    report_csv,
    report_file_response,
    report_job_create,
    report_rows,
    report_totals,
)
from reporting.services import FiguresRejected, attribution_settings, figures_ingest
from reporting.tasks import rollup_task


class FigureFilter(FilterSet):
    channel = filters.ChoiceFilter(choices=CampaignChannel.choices)
    day_from = filters.DateFilter(field_name="day", lookup_expr="gte")
    day_to = filters.DateFilter(field_name="day", lookup_expr="lte")

    class Meta:
        model = DeliveryFigure
        fields = ["campaign", "target", "source"]


class DeliveryFigureViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceScopedViewSet):
    """Delivery figures from channels and ad platforms, per campaign, target, channel and day.

    POST a batch: each row is keyed by (campaign, target, channel, day, source). Sending a row again
    replaces its figures; the spend ledger receives only the change of spend, once. A batch is all
    or nothing: a refused row is reported by its index, and nothing is written.
    """

    model = DeliveryFigure
    serializer_class = s.FigureOutput
    filterset_class = FigureFilter
    ordering_fields = ["day", "updated_at"]
    write_capability = Capability.RUN_CAMPAIGNS

    @extend_schema(request=s.FiguresBatch, responses={200: s.FiguresOutput})
    def create(self, request, *args, **kwargs):
        batch = s.FiguresInput(data=request.data)
        batch.is_valid(raise_exception=True)
        rows, errors = [], {}
        context = {**self.get_serializer_context(), "lookups": {}}  # each campaign and target read once a batch
        for index, item in enumerate(batch.validated_data["figures"]):
            row = s.FigureInput(data=item, context=context)
            if row.is_valid():
                rows.append(row.validated_data)
            else:
                errors[str(index)] = row.errors
        if errors:
            raise ValidationError({"figures": errors})  # answered by core.api, the first errors and a count
        try:
            result = figures_ingest(rows=rows)
        except FiguresRejected as exc:
            return Response({"figures": exc.errors}, status=status.HTTP_400_BAD_REQUEST)
        return Response(s.FiguresOutput(result).data)


def _ids(name: str, what: str) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": MAX_ID}, "maxItems": 100},
        style="form",
        explode=False,
        description=f"{what} ids, comma-separated.",
    )


def _choices(name: str, values: list[str], what: str, *, unique: bool = False) -> OpenApiParameter:
    schema = {"type": "array", "items": {"type": "string", "enum": values}, "maxItems": len(values)}
    if unique:
        schema["uniqueItems"] = True
    return OpenApiParameter(
        name,
        schema,
        style="form",
        explode=False,
        description=what,
    )


DAY = {"type": "string", "format": "date", "pattern": r"^(20\d\d|2100)-"}

REPORT_PARAMETERS = [
    _ids("campaign", "Campaign"),
    _ids("segment", "Segment"),
    _ids("target", "Target"),
    _choices("channel", list(CampaignChannel.values), "Channels, comma-separated."),
    OpenApiParameter("date_from", DAY, description="First day, in the workspace's time zone (2000 to 2100)."),
    OpenApiParameter("date_to", DAY, description="Last day (at most ten years after date_from)."),
    _choices("group_by", list(GROUPS), f"Among {', '.join(GROUPS)}; comma-separated, each once.", unique=True),
    OpenApiParameter("basis", str, enum=["attributed", "reported"], description="Which conversions the KPIs use."),
]


class CSVRenderer(BaseRenderer):
    """`?format=csv` or `Accept: text/csv`: the report's rows as a CSV file (the view writes it)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, str | bytes):
            return data
        return JSONRenderer().render(data)  # an error or metadata, as JSON text


class OneReportSchema(CibleAutoSchema):
    """The report's GET answers one object (rows and totals), not a list of them."""

    def _is_list_view(self, serializer=None) -> bool:
        return False

    def _get_format_parameters(self):
        # `?format=csv` stays answered, undocumented: the CSV is its own operation (reports/csv/), so
        # that a generated client never asks the JSON operation for a body it cannot parse.
        return []


class ReportViewSet(WorkspaceScopedViewSet):
    """Performance reports: sums, reach, frequency and KPIs from the roll-up, filtered and grouped."""

    metadata_class = ActionsOnlyMetadata

    schema = OneReportSchema()

    model = DeliveryFigure  # tenancy only; reports read the roll-up
    serializer_class = s.ReportOutput
    filter_backends: list = []
    pagination_class = None
    # api_settings has imported the classes; the stubs type the setting as the dotted paths it names.
    renderer_classes = [*cast(list[type[BaseRenderer]], api_settings.DEFAULT_RENDERER_CLASSES), CSVRenderer]

    def handle_exception(self, exc):
        # Errors are JSON, whatever format the report was asked in.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)

    def _query(self, request) -> ReportQuery:
        params = s.ReportParameters(data=request.query_params)
        params.is_valid(raise_exception=True)
        return ReportQuery(workspace=self.workspace, **params.query_kwargs()).check()

    @extend_schema(parameters=REPORT_PARAMETERS, responses={(200, "application/json"): s.ReportOutput})
    def list(self, request, *args, **kwargs):
        """The report as JSON. (`?format=csv` is still answered, as the csv/ operation.)"""
        if getattr(request.accepted_renderer, "format", None) == "csv":
            return self._csv(request)
        query = self._query(request)
        rows = report_rows(query=query)
        return Response(s.ReportOutput({"rows": rows, "totals": report_totals(query=query)}).data)

    def _csv(self, request) -> HttpResponse:
        query = self._query(request)
        rows = report_rows(query=query)
        response = HttpResponse(report_csv(rows=rows, columns=report_columns(query=query)), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="report-{self.workspace.slug}.csv"'
        return response

    @extend_schema(
        parameters=REPORT_PARAMETERS,
        responses={(200, "text/csv"): OpenApiTypes.STR},
        description="The same report as a CSV file: the groupings asked for, then the names and the figures.",
    )
    @action(detail=False, methods=["get"], url_path="csv", renderer_classes=[CSVRenderer])
    def csv(self, request, *args, **kwargs):
        return self._csv(request)

    @extend_schema(request=s.RollupInput, responses={202: s.QueuedOutput})
    @action(detail=False, methods=["post"])
    def refresh(self, request, *args, **kwargs):
        """Queue the roll-up now: incremental, or `full: true` for every row; `reattribute: true` to attribute
        every order again."""
        data = s.RollupInput(data=request.data)
        data.is_valid(raise_exception=True)
        rollup_task.delay_on_commit(workspace_id=self.workspace.pk, **data.validated_data)
        return Response(s.QueuedOutput({"queued": True}).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(methods=["GET"], responses=s.AttributionSettingsIO)
    @extend_schema(methods=["PUT"], request=s.AttributionSettingsIO, responses=s.AttributionSettingsIO)
    @action(
        detail=False,
        methods=["get", "put"],
        url_path="attribution-settings",
        renderer_classes=api_settings.DEFAULT_RENDERER_CLASSES,
    )
    def attribution_settings(self, request, *args, **kwargs):
        """The attribution windows: an order counts for a click within `click_window`, for a delivery
        seen within `view_window`. New windows make the next roll-up attribute every order again."""
        current = attribution_settings(workspace=self.workspace)
        if request.method == "GET":
            return Response(s.AttributionSettingsIO(current).data)
        data = s.AttributionSettingsIO(current, data=request.data)
        data.is_valid(raise_exception=True)
        data.save()
        return Response(data.data)

    action_capabilities = {
        "refresh": Capability.RUN_CAMPAIGNS,
        "attribution_settings": Capability.RUN_CAMPAIGNS,
    }

    def required_capability(self, request):
        if self.action == "attribution_settings" and request.method == "GET":
            return Capability.READ
        return super().required_capability(request)


class ReportJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceScopedViewSet):
    """Reports computed by a worker into a CSV file: create one, poll it, download it."""

    model = ReportJob
    serializer_class = s.ReportJobOutput
    filterset_fields = ["status"]
    write_capability = Capability.READ  # asking for a report changes nothing of the workspace's data

    def scoped_queryset(self, queryset):
        return queryset.select_related("workspace")

    @extend_schema(request=s.ReportJobInput, responses={202: s.ReportJobOutput})
    def create(self, request, *args, **kwargs):
        params = s.ReportJobInput(data=request.data)
        params.is_valid(raise_exception=True)
        query = ReportQuery(workspace=self.workspace, **params.query_kwargs())
        job = report_job_create(query=query, user=request.user)
        return Response(
            s.ReportJobOutput(job, context=self.get_serializer_context()).data, status=status.HTTP_202_ACCEPTED
        )

    @extend_schema(responses={(200, "text/csv"): bytes})
    @action(detail=True, methods=["get"], url_name="download")
    def download(self, request, *args, **kwargs):
        return report_file_response(job=self.get_object())
