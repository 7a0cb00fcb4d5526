from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api.base import ReadOnlyWorkspaceViewSet, WorkspaceScopedViewSet
from accounts.roles import Capability
from core.api import ActionsOnlyMetadata, parse_datetime_param
from core.errors import CommonErrorCode
from customers.api import views as customers_views
from customers.api.views import workspace_profile
from privacy import consent, requests, retention
from privacy.api import filters
from privacy.api import serializers as s
from privacy.audit import Action, audit_record
from privacy.destinations import export_destinations
from privacy.errors import PrivacyErrorCode
from privacy.models import AuditEntry, ConsentRecord, DataSubjectRequest, RemovalNotice, RetentionPolicy, Suppression
from privacy.processing import processing_records
from privacy.selectors import consent_state
from privacy.suppression import hashed_identifier, suppression_add


class ConsentRecordViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, WorkspaceScopedViewSet
):
    """The append-only consent history: records are added, never changed or deleted."""

    model = ConsentRecord
    filterset_class = filters.ConsentRecordFilter
    ordering_fields = ["recorded_at", "id"]
    write_capability = Capability.RECORD_CONSENT

    def get_serializer_class(self):
        return s.ConsentRecordInput if self.action == "create" else s.ConsentRecordOutput

    @extend_schema(request=s.ConsentRecordInput, responses={201: s.ConsentRecordOutput})
    def create(self, request, *args, **kwargs):
        data = s.ConsentRecordInput(data=request.data)
        data.is_valid(raise_exception=True)
        profile = workspace_profile(self, data.validated_data.pop("profile"))
        record = consent.consent_record_create(profile=profile, by=request.user, **data.validated_data)
        return Response(s.ConsentRecordOutput(record).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[
            OpenApiParameter("profile", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, required=True),
            OpenApiParameter(
                "at", OpenApiTypes.DATETIME, description="The state in force at this time; now if omitted."
            ),
        ],
        responses=s.ConsentRecordOutput(many=True),
    )
    @action(detail=False, methods=["get"], pagination_class=None, filterset_class=None)
    def current(self, request, *args, **kwargs):
        """The consent in force per purpose and channel for one person, now or at a past time."""
        raw = request.query_params.get("profile", "")
        if not raw.isdigit():
            raise ValidationError(
                {"profile": ValidationError(gettext("Give the profile's id."), code=CommonErrorCode.REQUIRED)}
            )
        profile = workspace_profile(self, int(raw))
        at = request.query_params.get("at")
        when = parse_datetime_param(at) if at else None
        if at and when is None:
            raise ValidationError(
                {"at": ValidationError(gettext("Expected an ISO 8601 date-time."), code=CommonErrorCode.INVALID)}
            )
        return Response(s.ConsentRecordOutput(consent_state(profile=profile, at=when), many=True).data)

    @extend_schema(request=s.ConsentWithdrawInput, responses={201: s.ConsentRecordOutput(many=True)})
    @action(detail=False, methods=["post"], pagination_class=None, filterset_class=None)
    def withdraw(self, request, *args, **kwargs):
        """Withdraw the person's consent in one call: every grant in force, or those of the purposes and channels given."""
        data = s.ConsentWithdrawInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        profile = workspace_profile(self, fields.pop("profile"))
        records = consent.consent_withdraw(profile=profile, by=request.user, **fields)
        return Response(s.ConsentRecordOutput(records, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ConsentImportInput, responses={201: s.ConsentImportOutput})
    @action(detail=False, methods=["post"], url_path="import", pagination_class=None, filterset_class=None)
    def import_records(self, request, *args, **kwargs):
        """Import consent statements collected elsewhere, each with its proof; all or nothing, replay-safe."""
        data = s.ConsentImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            result = consent.consents_import(
                workspace=self.workspace, rows=data.validated_data["records"], by=request.user
            )
        except consent.ImportRejected as exc:
            return Response(exc.errors, status=status.HTTP_400_BAD_REQUEST)
        return Response(result, status=status.HTTP_201_CREATED)


class RequestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceScopedViewSet):
    """Data-subject requests: recorded, answered within a month (once extendable), carried out by kind."""

    model = DataSubjectRequest
    read_capability = Capability.HANDLE_PRIVACY
    write_capability = Capability.HANDLE_PRIVACY
    filterset_class = filters.RequestFilter
    serializer_class = s.RequestOutput

    def scoped_queryset(self, queryset):
        return queryset.select_related("workspace")

    def _answer(self, obj) -> Response:
        return Response(s.RequestOutput(obj).data)

    @extend_schema(request=s.RequestInput, responses={201: s.RequestOutput})
    def create(self, request, *args, **kwargs):
        data = s.RequestInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        profile_id = fields.pop("profile", None)
        profile = workspace_profile(self, profile_id) if profile_id is not None else None
        obj = requests.request_create(workspace=self.workspace, profile=profile, by=request.user, **fields)
        return Response(s.RequestOutput(obj).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.RequestUpdateInput, responses=s.RequestOutput)
    def partial_update(self, request, *args, **kwargs):
        data = s.RequestUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        obj = requests.request_update(request=self.get_object(), by=request.user, **data.validated_data)
        return self._answer(obj)

    @extend_schema(request=None, responses=s.RequestOutput)
    @action(detail=True, methods=["post"])
    def start(self, request, *args, **kwargs):
        return self._answer(requests.request_start(request=self.get_object(), by=request.user))

    @extend_schema(request=s.RequestReasonInput, responses=s.RequestOutput)
    @action(detail=True, methods=["post"])
    def extend(self, request, *args, **kwargs):
        """Two more months, once, with the reason told to the person."""
        data = s.RequestReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        return self._answer(requests.request_extend(request=self.get_object(), by=request.user, **data.validated_data))

    @extend_schema(request=s.RequestReasonInput, responses=s.RequestOutput)
    @action(detail=True, methods=["post"])
    def reject(self, request, *args, **kwargs):
        data = s.RequestReasonInput(data=request.data)
        data.is_valid(raise_exception=True)
        return self._answer(requests.request_reject(request=self.get_object(), by=request.user, **data.validated_data))

    @extend_schema(request=None, responses=s.RequestOutput)
    @action(detail=True, methods=["post"])
    def complete(self, request, *args, **kwargs):
        """Carry the request out (export, correct, erase or suppress, by its kind) and complete it."""
        return self._answer(requests.request_complete(request=self.get_object(), by=request.user))

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], filterset_class=None)
    def export(self, request, *args, **kwargs):
        """The access or portability file (JSON); the download is audited."""
        obj = self.get_object()
        return request_file_response(obj, by=request.user)

    @extend_schema(responses=s.DestinationOutput(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def destinations(self, request, *args, **kwargs):
        """Every past export destination of the person's data, so that a removal can be sent."""
        obj = self.get_object()
        found = export_destinations(profile=obj.profile) if obj.profile_id else []
        return Response(s.DestinationOutput(found, many=True).data)


def request_file_response(obj: DataSubjectRequest, *, by) -> FileResponse:
    name = obj.export_file.name
    if not name:  # what `not obj.export_file` tests
        raise Http404("This request has no file.")
    audit_record(
        workspace_id=obj.workspace_id,
        actor=by,
        action=Action.ACCESS_DOWNLOADED,
        object_type="data_subject_request",
        object_id=obj.pk,
        profile_id=obj.profile_id,
    )
    return FileResponse(
        obj.export_file.open("rb"),
        as_attachment=True,
        filename=name.rsplit("/", 1)[-1],
        content_type="application/json",
    )


class SuppressionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceScopedViewSet):
    """The suppression list: hashes of people never to contact for marketing. Entries are never removed."""

    model = Suppression
    read_capability = Capability.HANDLE_PRIVACY
    write_capability = Capability.HANDLE_PRIVACY
    filterset_class = filters.SuppressionFilter
    serializer_class = s.SuppressionOutput

    @extend_schema(request=s.SuppressionInput, responses={201: s.SuppressionOutput})
    def create(self, request, *args, **kwargs):
        data = s.SuppressionInput(data=request.data)
        data.is_valid(raise_exception=True)
        hashed = hashed_identifier(data.validated_data["identifier"], default_region=self.workspace.country)
        if hashed is None:
            raise ValidationError(
                {
                    "identifier": ValidationError(
                        gettext("Expected an e-mail or a phone number."), code=PrivacyErrorCode.INVALID_IDENTIFIER
                    )
                }
            )
        suppression_add(
            workspace_id=self.workspace.pk, hashes={hashed}, reason=Suppression.Reason.MANUAL, by=request.user
        )
        entry = Suppression.objects.get(workspace=self.workspace, kind=hashed[0], hash=hashed[1])
        audit_record(
            workspace_id=self.workspace.pk,
            actor=request.user,
            action=Action.SUPPRESSION_ADDED,
            object_type="suppression",
            object_id=entry.pk,
        )
        return Response(s.SuppressionOutput(entry).data, status=status.HTTP_201_CREATED)


class AuditEntryViewSet(ReadOnlyWorkspaceViewSet):
    """The audit log (append-only): PII exports, request handling and views of a person's data."""

    model = AuditEntry
    read_capability = Capability.HANDLE_PRIVACY
    filterset_class = filters.AuditEntryFilter
    serializer_class = s.AuditEntryOutput


class RemovalNoticeViewSet(ReadOnlyWorkspaceViewSet):
    """Removal notices sent (or to send by hand) to the past destinations of a person's data."""

    model = RemovalNotice
    read_capability = Capability.HANDLE_PRIVACY
    filterset_class = filters.RemovalNoticeFilter
    serializer_class = s.RemovalNoticeOutput


class PrivacyViewSet(WorkspaceScopedViewSet):
    """The workspace's retention policy and its records of processing."""

    model = RetentionPolicy
    read_capability = Capability.HANDLE_PRIVACY
    write_capability = Capability.HANDLE_PRIVACY
    action_capabilities = {"records_of_processing": Capability.READ}
    pagination_class = None
    filterset_class = None
    serializer_class = s.RetentionPolicySerializer
    metadata_class = ActionsOnlyMetadata

    @extend_schema(methods=["GET"], responses=s.RetentionPolicySerializer)
    @extend_schema(methods=["PUT"], request=s.RetentionPolicySerializer, responses=s.RetentionPolicySerializer)
    @action(detail=False, methods=["get", "put"], serializer_class=s.RetentionPolicySerializer)
    def retention(self, request, *args, **kwargs):
        """How long personal data is kept; empty means no limit for that kind."""
        policy = retention.retention_policy(workspace=self.workspace)
        if request.method == "PUT":
            data = s.RetentionPolicySerializer(policy, data=request.data)
            data.is_valid(raise_exception=True)
            policy = retention.retention_policy_update(workspace=self.workspace, by=request.user, **data.validated_data)
        return Response(s.RetentionPolicySerializer(policy).data)

    @extend_schema(request=None, responses=s.PurgeOutput)
    @action(detail=False, methods=["post"])
    def purge(self, request, *args, **kwargs):
        """Purge one batch of each kind past retention now (the daily task goes on until done)."""
        retention.retention_policy_ensure(workspace=self.workspace)
        purged, more = retention.retention_purge(workspace_id=self.workspace.pk)
        return Response({"purged": purged, "more": more})

    @extend_schema(responses=s.ProcessingRecordOutput(many=True))
    @action(detail=False, methods=["get"], url_path="records-of-processing")
    def records_of_processing(self, request, *args, **kwargs):
        """GDPR Art. 30: each category of personal data held, its purposes, legal basis and retention."""
        return Response(s.ProcessingRecordOutput(processing_records(workspace=self.workspace), many=True).data)


class ProfileViewSet(customers_views.ProfileViewSet):
    """Profiles, with the consent in force of each (owned by privacy)."""

    @extend_schema(
        parameters=[OpenApiParameter("at", OpenApiTypes.DATETIME, description="State in force at this time.")],
        responses=s.ConsentRecordOutput(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None)
    def consents(self, request, *args, **kwargs):
        """The consent in force per purpose and channel (the latest record of each)."""
        profile = self.get_object()
        at = request.query_params.get("at")
        when = parse_datetime_param(at) if at else None
        if at and when is None:
            raise ValidationError(
                {"at": ValidationError(gettext("Expected an ISO 8601 date-time."), code=CommonErrorCode.INVALID)}
            )
        return Response(s.ConsentRecordOutput(consent_state(profile=profile, at=when), many=True).data)
