from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from accounts.api.base import ReadOnlyWorkspaceViewSet, WorkspaceScopedViewSet
from accounts.roles import Capability
from core.api import FilterBackend, PagesOrKeyset, RequestTooLarge, TimeCursorPagination, read_upload
from core.errors import CommonErrorCode
from core.lean import accepts_json, encoded_page, encoded_response
from core.parsers import SafeJSONParser
from customers import services
from customers.api import filters, lean
from customers.api import serializers as s
from customers.errors import CustomerErrorCode
from customers.ingestion import INGESTERS
from customers.match_rules import match_rules
from customers.models import (
    AttributeDefinition,
    Event,
    Identity,
    ImportJob,
    MatchRule,
    Order,
    Profile,
    ProfileMerge,
    SurveyQuestion,
    SurveyResponse,
)
from customers.selectors import identity_graph
from customers.timeline import profile_timeline


def _query_lists(params, lists: list[str]) -> dict:
    """Query parameters as a plain dict, with the repeatable ones as lists; an empty value is a
    parameter not given (as for page_size)."""
    data: dict = {key: params.get(key) for key in params if key not in lists and params.get(key) != ""}
    for key in lists:
        values = [value for value in params.getlist(key) if value != ""]
        if values:
            data[key] = values
    return data


def workspace_profile(view: WorkspaceScopedViewSet, profile_id: int, field: str = "profile") -> Profile:
    profile = Profile.objects.filter(workspace=view.workspace, pk=profile_id).first()
    if profile is None:
        raise ValidationError(
            {field: ValidationError(gettext("No such profile in this workspace."), code=CommonErrorCode.DOES_NOT_EXIST)}
        )
    return profile


class ProfileViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    WorkspaceScopedViewSet,
):
    """Profiles: the person, with the demographic, geographic and attitudinal facets."""

    model = Profile
    filterset_class = filters.ProfileFilter
    pagination_class = PagesOrKeyset
    ordering_fields = ["id", "created_at", "updated_at", "birth_date", "last_name"]
    action_capabilities = {"merge": Capability.MERGE_PROFILES, "unmerge": Capability.MERGE_PROFILES}

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update"):
            return s.ProfileInput
        if self.action == "retrieve":
            return s.ProfileDetailOutput
        if self.action == "merge":
            return s.MergeInput
        if self.action == "unmerge":
            return s.UnmergeInput
        if self.action == "identity_graph":
            return s.IdentityGraphOutput
        if self.action == "timeline":
            return s.TimelineOutput
        return s.ProfileOutput

    def list(self, request, *args, **kwargs):
        if not accepts_json(request):
            return super().list(request, *args, **kwargs)
        plan = lean.profile_plan()
        return encoded_page(self, self.filter_queryset(self.get_queryset()).values(*plan.columns), plan.rows)

    def retrieve(self, request, *args, **kwargs):
        if not accepts_json(request):
            return super().retrieve(request, *args, **kwargs)
        row = self.get_row(lean.profile_detail_values)
        return encoded_response(lean.profile_detail(row))

    @extend_schema(request=s.ProfileInput, responses={201: s.ProfileOutput})
    def create(self, request, *args, **kwargs):
        data = self._input(request)
        profile = services.profile_create(workspace=self.workspace, **data)
        return Response(s.ProfileOutput(profile).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ProfileInput, responses=s.ProfileOutput)
    def update(self, request, *args, **kwargs):
        profile = self.get_object()
        data = self._input(request, partial=kwargs.get("partial", False), instance=profile)
        profile = services.profile_update(profile=profile, **data)
        return Response(s.ProfileOutput(profile).data)

    def perform_destroy(self, instance):
        services.profile_delete(profile=instance)

    def _input(self, request, *, partial: bool = False, instance: Profile | None = None) -> dict:
        # With the profile being changed: a latitude sent alone pairs with the longitude it has.
        serializer = s.ProfileInput(instance, data=request.data, partial=partial, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(request=s.MergeInput, responses=s.ProfileOutput)
    @action(detail=True, methods=["post"])
    def merge(self, request, *args, **kwargs):
        """Merge another profile into this one; the other's history follows and it is deleted."""
        survivor = self.get_object()
        data = s.MergeInput(data=request.data)
        data.is_valid(raise_exception=True)
        merged = workspace_profile(self, data.validated_data["other"], field="other")
        survivor = services.profile_merge(survivor=survivor, merged=merged, by=request.user)
        return Response(s.ProfileOutput(survivor).data)

    @extend_schema(request=s.UnmergeInput, responses=s.ProfileOutput)
    @action(detail=True, methods=["post"])
    def unmerge(self, request, *args, **kwargs):
        """Split one of this profile's merges back: the merged profile returns, with the rows that came
        from it (events, orders, identifiers, consents, deliveries...); answers with it."""
        survivor = self.get_object()
        data = s.UnmergeInput(data=request.data)
        data.is_valid(raise_exception=True)
        merge = ProfileMerge.objects.filter(survivor=survivor, pk=data.validated_data["merge"]).first()
        if merge is None:
            raise ValidationError(
                {
                    "merge": ValidationError(
                        gettext("No merge of this profile has this id."), code=CommonErrorCode.DOES_NOT_EXIST
                    )
                }
            )
        restored = services.profile_unmerge(merge=merge, by=request.user)
        return Response(s.ProfileOutput(restored).data)

    @extend_schema(parameters=[s.TimelineQuery], responses=s.TimelineOutput)
    @action(detail=True, methods=["get"])
    def timeline(self, request, *args, **kwargs):
        """The person's journey across channels on one timeline, newest first: events (web, app,
        store, e-mail, SMS, display, customer service), orders, consents, campaign deliveries,
        identifiers first seen and merges; times in the workspace's time zone."""
        profile = self.get_object()
        query = s.TimelineQuery(data=_query_lists(request.query_params, ["channel"]))
        query.is_valid(raise_exception=True)
        data = query.validated_data
        page = profile_timeline(
            profile=profile,
            before=data.get("before"),
            skip=data["skip"],
            limit=data["limit"],
            channels=sorted(data["channel"]) if data.get("channel") else None,
        )
        return Response(s.TimelineOutput(page).data)

    @extend_schema(responses=s.IdentityGraphOutput)
    @action(detail=True, methods=["get"], url_path="identity", url_name="identity-graph")
    def identity_graph(self, request, *args, **kwargs):
        """The profile's identity graph: its identifiers (source, first and last seen, how many
        profiles each joined) and the merges that formed it (by whom or which rule, from which item)."""
        return Response(s.IdentityGraphOutput(identity_graph(profile=self.get_object())).data)


class IdentityViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    WorkspaceScopedViewSet,
):
    model = Identity
    filterset_class = filters.IdentityFilter
    ordering_fields = ["id", "created_at"]

    def get_serializer_class(self):
        return s.IdentityInput if self.action == "create" else s.IdentityOutput

    @extend_schema(request=s.IdentityInput, responses={201: s.IdentityOutput})
    def create(self, request, *args, **kwargs):
        data = s.IdentityInput(data=request.data)
        data.is_valid(raise_exception=True)
        profile = workspace_profile(self, data.validated_data.pop("profile"))
        identity = services.identity_create(profile=profile, **data.validated_data)
        return Response(s.IdentityOutput(identity).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.identity_delete(identity=instance)


class MatchRuleViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    WorkspaceScopedViewSet,
):
    """How each identifier type stitches profiles at ingestion: deterministic (merges any two),
    weak (joins an anonymous profile, never two known people) or ignored; which profile survives
    (priority); how many profiles one identifier may join before it counts as shared. A type
    without a rule here follows the defaults (GET /match-rules/defaults/)."""

    model = MatchRule
    serializer_class = s.MatchRuleSerializer
    ordering_fields = ["priority", "type"]
    write_capability = Capability.MANAGE_WORKSPACE

    def perform_create(self, serializer):
        serializer.instance = services.match_rule_save(workspace=self.workspace, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.match_rule_save(
            workspace=self.workspace, rule=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.match_rule_delete(rule=instance)

    @extend_schema(parameters=[], responses=s.MatchRuleInForce(many=True))
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def defaults(self, request, *args, **kwargs):
        """Every identifier type's rule in force: the workspace's own (`own`), or the default."""
        rules = match_rules(workspace_id=self.workspace.pk)
        own = set(MatchRule.objects.filter(workspace=self.workspace).values_list("type", flat=True))
        return Response(
            s.MatchRuleInForce(
                [
                    {
                        "type": rule.type,
                        "strength": rule.strength,
                        "priority": rule.priority,
                        "max_profiles": rule.max_profiles,
                        "own": rule.type in own,
                    }
                    for rule in sorted(rules.values(), key=lambda r: (-r.priority, r.type))
                ],
                many=True,
            ).data
        )


class AttributeDefinitionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    WorkspaceScopedViewSet,
):
    """Typed custom attributes (interests, lifestyle...): a profile attribute must be declared here."""

    model = AttributeDefinition
    serializer_class = s.AttributeDefinitionSerializer
    filterset_class = filters.AttributeDefinitionFilter
    ordering_fields = ["key"]

    def perform_create(self, serializer):
        serializer.instance = services.attribute_definition_create(
            workspace=self.workspace, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.attribute_definition_update(
            definition=serializer.instance, **serializer.validated_data
        )


class SurveyQuestionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    WorkspaceScopedViewSet,
):
    """Survey questions as the team wrote them: the wording and the closed answers, with labels.
    Analyses read answers by these labels, and show only declared answers or answers at least
    5 people gave (no one's own words reach an aggregate)."""

    model = SurveyQuestion
    serializer_class = s.SurveyQuestionSerializer
    filterset_class = filters.SurveyQuestionFilter
    ordering_fields = ["survey", "question"]

    def perform_create(self, serializer):
        serializer.instance = services.survey_question_create(workspace=self.workspace, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.survey_question_update(question=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.survey_question_delete(question=instance)


class EventViewSet(ReadOnlyWorkspaceViewSet):
    """Behavioural events, newest first (cursor pagination). Send them through /ingest/events/."""

    model = Event
    serializer_class = s.EventOutput
    filterset_class = filters.EventFilter
    pagination_class = TimeCursorPagination
    ordering_fields = None
    filter_backends = [FilterBackend]


class OrderViewSet(ReadOnlyWorkspaceViewSet):
    """Orders (the transactional facet). Send them through /ingest/orders/."""

    model = Order
    serializer_class = s.OrderOutput
    pagination_class = PagesOrKeyset
    filterset_class = filters.OrderFilter
    ordering_fields = ["ordered_at", "amount", "id"]


class SurveyResponseViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, WorkspaceScopedViewSet
):
    model = SurveyResponse
    filterset_class = filters.SurveyResponseFilter
    ordering_fields = ["answered_at", "id"]

    def get_serializer_class(self):
        return s.SurveyResponseInput if self.action == "create" else s.SurveyResponseOutput

    @extend_schema(request=s.SurveyResponseInput, responses={201: s.SurveyResponseOutput})
    def create(self, request, *args, **kwargs):
        data = s.SurveyResponseInput(data=request.data)
        data.is_valid(raise_exception=True)
        profile = workspace_profile(self, data.validated_data.pop("profile"))
        response = services.survey_response_create(profile=profile, **data.validated_data)
        return Response(s.SurveyResponseOutput(response).data, status=status.HTTP_201_CREATED)


class IngestViewSet(WorkspaceScopedViewSet):
    """Bulk, replay-safe ingestion: up to 10,000 items a request, each with an idempotency key."""

    model = Profile
    throttle_scope = "ingest"
    parser_classes = [SafeJSONParser]
    serializer_class = s.IngestReportOutput

    def _ingest(self, request, kind: str) -> Response:
        body = request.data if isinstance(request.data, dict) else {}
        options = {"create_missing"} if kind != "profiles" else set()
        errors = {
            str(name): ValidationError(gettext("Unknown field."), code=CommonErrorCode.UNKNOWN_FIELD)
            for name in sorted(set(body) - {"items", *options}, key=str)
        }
        items = body.get("items")
        if not isinstance(items, list):
            errors["items"] = ValidationError(gettext("Expected a list of items."), code=CustomerErrorCode.NOT_A_LIST)
        if errors:
            raise ValidationError(errors)
        assert isinstance(items, list)
        if len(items) > settings.INGEST_MAX_ITEMS:
            raise RequestTooLarge(
                f"At most {settings.INGEST_MAX_ITEMS} items a request; this one has {len(items)}. Split the batch."
            )
        choices = {}
        if "create_missing" in body:
            if not isinstance(body["create_missing"], bool):
                raise ValidationError(
                    {
                        "create_missing": ValidationError(
                            gettext("Expected true or false."), code=CommonErrorCode.INVALID
                        )
                    }
                )
            choices["create_missing"] = body["create_missing"]
        report = INGESTERS[kind](workspace=self.workspace, items=items, **choices)
        return Response(report.as_dict())

    @extend_schema(
        request=s.ingest_request(s.IngestProfileItem, "IngestProfilesRequest"), responses=s.IngestReportOutput
    )
    @action(detail=False, methods=["post"])
    def profiles(self, request, *args, **kwargs):
        """Upsert profiles by external id; only the fields sent are changed."""
        return self._ingest(request, "profiles")

    @extend_schema(
        request=s.ingest_request(s.IngestEventItem, "IngestEventsRequest", create_missing=True),
        responses=s.IngestReportOutput,
    )
    @action(detail=False, methods=["post"])
    def events(self, request, *args, **kwargs):
        """Append behavioural events; an unknown external id creates a bare profile, unless create_missing is false."""
        return self._ingest(request, "events")

    @extend_schema(
        request=s.ingest_request(s.IngestOrderItem, "IngestOrdersRequest", create_missing=True),
        responses=s.IngestReportOutput,
    )
    @action(detail=False, methods=["post"])
    def orders(self, request, *args, **kwargs):
        """Upsert orders by order id; a prospect who orders becomes a customer."""
        return self._ingest(request, "orders")


class ImportJobViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, WorkspaceScopedViewSet
):
    """CSV imports of profiles or orders, run by a worker, with a row-level error report."""

    model = ImportJob
    filterset_class = filters.ImportJobFilter
    ordering_fields = ["created_at", "id"]
    parser_classes = [MultiPartParser]

    def get_serializer_class(self):
        return s.ImportJobInput if self.action == "create" else s.ImportJobOutput

    def scoped_queryset(self, queryset):
        return queryset.defer("content")

    @extend_schema(request=s.ImportJobInput, responses={202: s.ImportJobOutput})
    def create(self, request, *args, **kwargs):
        data = s.ImportJobInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        job = services.import_job_create(
            workspace=self.workspace,
            kind=data.validated_data["kind"],
            filename=upload.name,
            content=read_upload(upload),
            by=request.user,
        )
        job.refresh_from_db()  # in embedded mode the import has already run
        return Response(s.ImportJobOutput(job).data, status=status.HTTP_202_ACCEPTED)
