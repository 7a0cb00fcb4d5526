from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import Field, Model
from django.utils import timezone
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from core.api import MAX_ID
from core.errors import CommonErrorCode
from core.serializers import (
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    EmailField,
    IntegerField,
    JSONField,
    JSONObjectField,
    ListField,
    StrictInput,
)
from customers.errors import CustomerErrorCode
from customers.ingestion import MAX_ITEM_IDENTITIES, MAX_LIST_ATTRIBUTE, MAX_ORDER_ITEMS, attributes_validate
from customers.models import (
    MAX_ANSWER_ITEMS,
    MAX_ANSWER_TEXT,
    MAX_OPTION_TEXT,
    MAX_OPTIONS,
    PROFILE_FIELDS,
    AttributeDefinition,
    Event,
    Identity,
    IdentityType,
    ImportJob,
    MatchRule,
    MatchStrength,
    Order,
    Profile,
    ProfileMerge,
    SurveyQuestion,
    SurveyResponse,
)
from customers.normalise import normalise_phone
from customers.selectors import profile_summary


def _field_choices(model: type[Model], name: str) -> Sequence[Any]:
    """The choices of a model field, for a serializer's ChoiceField to offer the same."""
    field = model._meta.get_field(name)
    choices = field.choices if isinstance(field, Field) else None
    if choices is None:
        raise ImproperlyConfigured(f"{model._meta.label}.{name} has no choices.")
    return choices


class IdentityOutput(serializers.ModelSerializer):
    class Meta:
        model = Identity
        fields = ["id", "profile", "type", "value", "source", "created_at", "last_seen_at", "profiles_joined", "shared"]


class IdentityInput(StrictInput, serializers.Serializer):
    profile = serializers.IntegerField()
    type = serializers.ChoiceField(choices=_field_choices(Identity, "type"))
    value = CharField(max_length=254)


PROFILE_WRITABLE = list(PROFILE_FIELDS)


class ProfileOutput(serializers.ModelSerializer):
    age = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Profile
        fields = ["id", *PROFILE_WRITABLE, "age", "anonymous", "created_at", "updated_at"]


NO_NUL = "^[^\\x00]*$"


@extend_schema_field(
    {
        "type": "object",
        "description": "Attribute values by key, each key a defined attribute, each value of its type "
        "(null removes it).",
        "additionalProperties": {
            "nullable": True,
            "anyOf": [
                {"type": "string", "maxLength": 500, "pattern": NO_NUL},
                {"type": "number", "minimum": -(2**63), "maximum": 2**63 - 1},
                {"type": "boolean"},
                {
                    "type": "array",
                    "maxItems": MAX_LIST_ATTRIBUTE,
                    "items": {"type": "string", "maxLength": 200, "pattern": NO_NUL},
                },
            ],
        },
    }
)
class AttributeValuesField(JSONObjectField):
    pass


class IngestIdentity(StrictInput, serializers.Serializer):
    type = serializers.ChoiceField(choices=IdentityType.choices)
    value = CharField(max_length=254, help_text="Normalised on the way in: e-mails lower-cased, phones in E.164.")


class ProfileInput(StrictInput, serializers.ModelSerializer):
    """Field types for a single profile; attribute values are checked against their definitions."""

    attributes = AttributeValuesField(
        required=False, help_text="Attribute values by key (each key a defined attribute)."
    )

    class Meta:
        model = Profile
        fields = PROFILE_WRITABLE
        # Uniqueness of external_id is checked by the service with the workspace.
        validators: list[Callable[..., Any]] = []

    def validate(self, data):
        instance = self.instance
        latitude = data.get("latitude", getattr(instance, "latitude", None))
        longitude = data.get("longitude", getattr(instance, "longitude", None))
        if (latitude is None) != (longitude is None):
            raise serializers.ValidationError(
                {
                    "latitude": ErrorDetail(
                        "Give latitude and longitude together.", code=CustomerErrorCode.COORDINATES_PAIR
                    )
                }
            )
        return data

    def validate_attributes(self, value):
        try:
            return attributes_validate(workspace=self.context["workspace"], value=value)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages[0], code=exc.code) from None

    def validate_phone(self, value):
        if not value:
            return value
        try:
            return normalise_phone(value, default_region=self.context["workspace"].country)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages[0], code=exc.code) from None

    def validate_birth_date(self, value):
        if value is not None and (value > timezone.localdate() or value.year < 1900):
            raise serializers.ValidationError(
                gettext("Birth date must be between 1900 and today."), code=CommonErrorCode.OUT_OF_RANGE
            )
        return value


class ProfileSummaryOutput(serializers.Serializer):
    orders_count = serializers.IntegerField()
    orders_total = serializers.DecimalField(max_digits=16, decimal_places=2, allow_null=True)
    last_order_at = DateTimeField(allow_null=True)
    events_count = serializers.IntegerField()
    last_event_at = DateTimeField(allow_null=True)


class ProfileDetailOutput(ProfileOutput):
    identities = IdentityOutput(many=True, read_only=True)
    summary = serializers.SerializerMethodField()

    class Meta(ProfileOutput.Meta):
        fields = [*ProfileOutput.Meta.fields, "identities", "summary"]

    @extend_schema_field(ProfileSummaryOutput)
    def get_summary(self, profile) -> dict:
        return ProfileSummaryOutput(profile_summary(profile_id=profile.pk)).data


class MergeInput(StrictInput, serializers.Serializer):
    other = IntegerField(
        min_value=1, max_value=MAX_ID, help_text="Id of the profile merged into this one (it is deleted)."
    )


class UnmergeInput(StrictInput, serializers.Serializer):
    merge = IntegerField(
        min_value=1, max_value=MAX_ID, help_text="Id of one of this profile's merges (from its identity graph)."
    )


class MergeOutput(serializers.ModelSerializer):
    class Meta:
        model = ProfileMerge
        fields = [
            "id",
            "merged_external_id",
            "merged_profile_id",
            "merged_at",
            "merged_by",
            "reason",
            "rule_type",
            "source",
            "item_key",
            "moved",
            "unmerged_at",
            "unmerged_by",
        ]


class IdentityGraphOutput(serializers.Serializer):
    profile = serializers.IntegerField()
    external_id = CharField()
    anonymous = BooleanField()
    identities = IdentityOutput(many=True)
    merges = MergeOutput(many=True, help_text="The merges that formed this profile, newest first.")


class TimelineQuery(StrictInput, serializers.Serializer):
    before = DateTimeField(required=False, help_text="Entries at or before this moment (next_before of the last page).")
    skip = IntegerField(
        required=False,
        min_value=0,
        max_value=10_000,
        default=0,
        help_text="Entries of that exact moment already seen (next_skip of the last page).",
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500, default=100)
    channel = serializers.MultipleChoiceField(
        choices=_field_choices(Event, "channel"),
        required=False,
        help_text="Only these channels (repeat the parameter).",
    )


class TimelineEntry(serializers.Serializer):
    at = serializers.DateTimeField(help_text="In the workspace's time zone.")
    kind = serializers.ChoiceField(choices=["event", "order", "consent", "touch", "identity", "merge"])
    channel = CharField(allow_blank=True)
    title = CharField(help_text="What happened, in the reader's language.")
    detail = CharField(allow_blank=True)
    ref = CharField(help_text="The row behind the entry: <kind>:<id>.")


class TimelineOutput(serializers.Serializer):
    time_zone = CharField()
    entries = TimelineEntry(many=True)
    next_before = serializers.DateTimeField(allow_null=True, help_text="Pass as before for the next page.")
    next_skip = serializers.IntegerField(help_text="Pass as skip for the next page.")


class MatchRuleInForce(serializers.Serializer):
    type = serializers.ChoiceField(choices=IdentityType.choices)
    strength = serializers.ChoiceField(choices=MatchStrength.choices)
    priority = serializers.IntegerField()
    max_profiles = serializers.IntegerField()
    own = BooleanField(help_text="The workspace's own rule (false: the default).")


class MatchRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = MatchRule
        fields = ["id", "type", "strength", "priority", "max_profiles", "updated_at"]
        read_only_fields = ["id", "updated_at"]


OPTION_TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_OPTION_TEXT}


class TextOption(StrictInput, serializers.Serializer):
    value = CharField(max_length=MAX_OPTION_TEXT, help_text="The value as stored.")
    # DRF takes declared fields off the class; the stubs see a Field's own `label` attribute.
    label = CharField(max_length=MAX_OPTION_TEXT, help_text="What people read.")  # type: ignore[assignment]


@extend_schema_field(
    {
        "description": "A closed answer as stored: a text, a number or yes/no.",
        "anyOf": [OPTION_TEXT, {"type": "number", "minimum": -(2**63), "maximum": 2**63 - 1}, {"type": "boolean"}],
    }
)
class OptionValueField(JSONField):
    pass


class AnswerOption(StrictInput, serializers.Serializer):
    value = OptionValueField(help_text="The answer as stored: a text, a number or yes/no.")
    # DRF takes declared fields off the class; the stubs see a Field's own `label` attribute.
    label = CharField(max_length=MAX_OPTION_TEXT, help_text="What people read.")  # type: ignore[assignment]


class AttributeDefinitionSerializer(serializers.ModelSerializer):
    options = ListField(
        child=TextOption(),
        max_length=MAX_OPTIONS,
        required=False,
        help_text="The values a text or list attribute takes, with their labels (analyses show the labels).",
    )

    class Meta:
        model = AttributeDefinition
        fields = ["id", "key", "label", "type", "description", "options"]
        validators: list[Callable[..., Any]] = []


class SurveyQuestionSerializer(serializers.ModelSerializer):
    options = ListField(
        child=AnswerOption(),
        max_length=MAX_OPTIONS,
        required=False,
        help_text="The question's closed answers with their labels. Analyses show only these answers, "
        "or answers at least 5 people gave.",
    )

    class Meta:
        model = SurveyQuestion
        fields = ["id", "survey", "question", "label", "options", "created_at"]
        validators: list[Callable[..., Any]] = []


class EventOutput(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ["id", "profile", "type", "channel", "occurred_at", "received_at", "properties", "idempotency_key"]


class OrderOutput(serializers.ModelSerializer):
    class Meta:
        model = Order
        fields = [
            "id",
            "profile",
            "order_id",
            "amount",
            "currency",
            "ordered_at",
            "channel",
            "status",
            "items",
            "created_at",
            "updated_at",
        ]


class SurveyResponseOutput(serializers.ModelSerializer):
    class Meta:
        model = SurveyResponse
        fields = ["id", "profile", "survey", "question", "answer", "answered_at", "created_at"]


ANSWER_TEXT = {"type": "string", "minLength": 1, "maxLength": MAX_ANSWER_TEXT}


@extend_schema_field(
    {
        "description": "A text, a number, yes/no, or a list of texts.",
        "anyOf": [
            ANSWER_TEXT,
            {"type": "number", "minimum": -(2**63), "maximum": 2**63 - 1},
            {"type": "boolean"},
            {"type": "array", "items": ANSWER_TEXT, "minItems": 1, "maxItems": MAX_ANSWER_ITEMS},
        ],
    }
)
class AnswerField(JSONField):
    pass


class SurveyResponseInput(StrictInput, serializers.ModelSerializer):
    profile = serializers.IntegerField()
    answer = AnswerField(help_text="A text, a number, yes/no, or a list of texts.")

    class Meta:
        model = SurveyResponse
        fields = ["profile", "survey", "question", "answer", "answered_at"]


class ImportJobOutput(serializers.ModelSerializer):
    class Meta:
        model = ImportJob
        fields = [
            "id",
            "kind",
            "filename",
            "status",
            "rows",
            "created",
            "updated",
            "duplicates",
            "rejected",
            "errors",
            "failure",
            "created_at",
            "started_at",
            "finished_at",
        ]


class ImportJobInput(StrictInput, serializers.Serializer):
    kind = serializers.ChoiceField(choices=ImportJob.Kind.choices)
    file = serializers.FileField(help_text="CSV, comma or semicolon separated, UTF-8 or Windows-1252.")


# --- bulk ingestion (documented shapes; items are validated one by one by customers.ingestion) ---


class IngestProfileItem(StrictInput, serializers.Serializer):
    idempotency_key = CharField(max_length=128)
    external_id = CharField(max_length=128)
    lifecycle_stage = serializers.ChoiceField(choices=_field_choices(Profile, "lifecycle_stage"), required=False)
    first_name = CharField(required=False)
    last_name = CharField(required=False)
    email = EmailField(required=False)
    phone = CharField(required=False)
    birth_date = DateField(required=False, allow_null=True)
    gender = serializers.ChoiceField(choices=_field_choices(Profile, "gender"), required=False)
    socio_professional_category = serializers.ChoiceField(
        choices=_field_choices(Profile, "socio_professional_category"), required=False
    )
    city = CharField(required=False)
    postal_code = CharField(required=False)
    region = CharField(required=False)
    country = CharField(required=False, min_length=2, max_length=2)
    latitude = serializers.FloatField(required=False, allow_null=True)
    longitude = serializers.FloatField(required=False, allow_null=True)
    attributes = AttributeValuesField(required=False)
    identities = ListField(child=IngestIdentity(), required=False, max_length=MAX_ITEM_IDENTITIES)


NAMED_BY = (
    "The person is named by external_id, by identities (a cookie, a device, a loyalty card, a hashed e-mail...), "
    "or both; at least one. Identifiers seen together stitch profiles by the workspace's match rules."
)


class IngestEventItem(StrictInput, serializers.Serializer):
    idempotency_key = CharField(max_length=128)
    external_id = CharField(
        max_length=128, required=False, help_text="The person; created bare if not yet known. " + NAMED_BY
    )
    identities = ListField(
        child=IngestIdentity(),
        required=False,
        max_length=MAX_ITEM_IDENTITIES,
        help_text="Identifiers of the person; alone, they land on an anonymous profile. " + NAMED_BY,
    )
    type = serializers.ChoiceField(choices=_field_choices(Event, "type"))
    channel = serializers.ChoiceField(choices=_field_choices(Event, "channel"))
    occurred_at = DateTimeField()
    properties = serializers.DictField(required=False)


class IngestOrderLine(StrictInput, serializers.Serializer):
    sku = CharField(max_length=64)
    name = CharField(required=False)
    category = CharField(required=False)
    quantity = serializers.IntegerField(min_value=1, required=False)
    unit_price = serializers.DecimalField(max_digits=14, decimal_places=2, required=False)


class IngestOrderItem(StrictInput, serializers.Serializer):
    idempotency_key = CharField(max_length=128)
    external_id = CharField(max_length=128, required=False, help_text=NAMED_BY)
    identities = ListField(child=IngestIdentity(), required=False, max_length=MAX_ITEM_IDENTITIES, help_text=NAMED_BY)
    order_id = CharField(max_length=128)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.ChoiceField(choices=_field_choices(Order, "currency"), required=False)
    ordered_at = DateTimeField()
    channel = serializers.ChoiceField(choices=_field_choices(Order, "channel"))
    status = serializers.ChoiceField(choices=Order.Status.choices, required=False)
    items = IngestOrderLine(many=True, required=False, max_length=MAX_ORDER_ITEMS)  # type: ignore[call-arg]


def ingest_request(
    item_serializer: type[serializers.Serializer], name: str, *, create_missing: bool = False
) -> type[serializers.Serializer]:
    fields: dict[str, serializers.Field] = {
        "items": item_serializer(many=True, max_length=settings.INGEST_MAX_ITEMS, help_text="At most 10,000 items.")  # type: ignore[call-arg]
    }
    if create_missing:
        fields["create_missing"] = BooleanField(
            required=False,
            default=True,
            help_text=(
                "An unknown external_id creates a bare profile (true, the default; counted in profiles_created) "
                "or rejects the item with unknown_profile (false)."
            ),
        )
    return type(name, (StrictInput,), fields)  # the envelope refuses keys it does not know


class IngestMessage(serializers.Serializer):
    message = CharField()
    code = CharField()


class IngestRejected(serializers.Serializer):
    index = serializers.IntegerField()
    # Named like Serializer.errors: DRF's metaclass takes declared fields off the class, so nothing is
    # shadowed at runtime; the stubs only see a field overriding the attribute.
    errors = serializers.DictField(child=IngestMessage(many=True))  # type: ignore[assignment]


class IngestReportOutput(serializers.Serializer):
    received = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    profiles_created = serializers.IntegerField(help_text="Profiles that did not exist before this batch.")
    profiles_merged = serializers.IntegerField(
        help_text="Profiles merged into another because the batch showed them to be one person (match rules)."
    )
    rejected = IngestRejected(many=True)
