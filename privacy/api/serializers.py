from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext
from rest_framework import serializers

from core.errors import CommonErrorCode
from core.serializers import BooleanField, CharField, DateTimeField, IPAddressField, ListField, StrictInput
from customers.models import Channel
from privacy.models import (
    CONSENT_FIELDS,
    AuditEntry,
    ConsentPurpose,
    ConsentRecord,
    DataSubjectRequest,
    RemovalNotice,
    RetentionPolicy,
    Suppression,
)


def not_in_future(value):
    if value and value > timezone.now() + timedelta(minutes=5):
        raise serializers.ValidationError(gettext("This cannot be in the future."), code=CommonErrorCode.FUTURE)
    return value


class ConsentRecordOutput(serializers.ModelSerializer):
    class Meta:
        model = ConsentRecord
        fields = ["id", "profile", *CONSENT_FIELDS, "created_at"]


class ConsentRecordInput(StrictInput, serializers.ModelSerializer):
    profile = serializers.IntegerField()
    recorded_at = DateTimeField(required=False, help_text="Defaults to now.", validators=[not_in_future])

    class Meta:
        model = ConsentRecord
        fields = ["profile", *CONSENT_FIELDS]


class ConsentWithdrawInput(StrictInput, serializers.Serializer):
    profile = serializers.IntegerField()
    purposes = ListField(
        child=serializers.ChoiceField(choices=ConsentPurpose.choices),
        required=False,
        max_length=len(ConsentPurpose.choices),
        help_text="All when omitted.",
    )
    channels = ListField(
        child=serializers.ChoiceField(choices=Channel.choices),
        required=False,
        max_length=len(Channel.choices),
        help_text="All when omitted.",
    )
    # Named like Serializer.source: DRF's metaclass takes declared fields off the class, so nothing is
    # shadowed at runtime; the stubs only see a field overriding the attribute.
    source = CharField(max_length=100, required=False, default="api")  # type: ignore[assignment]
    form = CharField(max_length=200, required=False, allow_blank=True, default="")
    notice_version = CharField(max_length=40, required=False, allow_blank=True, default="")
    ip_address = IPAddressField(required=False, allow_null=True, default=None)
    user_agent = CharField(max_length=500, required=False, allow_blank=True, default="")
    proof = CharField(max_length=500, required=False, allow_blank=True, default="")
    recorded_at = DateTimeField(required=False, validators=[not_in_future])


class ConsentImportRow(serializers.Serializer):
    external_id = CharField(max_length=128)
    purpose = CharField()
    channel = CharField()
    status = CharField()
    legal_basis = CharField(required=False)
    recorded_at = DateTimeField()
    # Named like Serializer.source: DRF's metaclass takes declared fields off the class, so nothing is
    # shadowed at runtime; the stubs only see a field overriding the attribute.
    source = CharField()  # type: ignore[assignment]
    form = CharField(required=False, allow_blank=True)
    notice_version = CharField(required=False, allow_blank=True)
    ip_address = CharField(required=False, allow_blank=True, allow_null=True)
    user_agent = CharField(required=False, allow_blank=True)
    proof = CharField(required=False, allow_blank=True)


class ConsentImportInput(StrictInput, serializers.Serializer):
    records = ListField(child=ConsentImportRow(), allow_empty=False, max_length=10_000)


class ConsentImportOutput(serializers.Serializer):
    received = serializers.IntegerField()
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()


class RequestOutput(serializers.ModelSerializer):
    overdue = serializers.SerializerMethodField()
    export_url = serializers.SerializerMethodField()

    class Meta:
        model = DataSubjectRequest
        fields = [
            "id",
            "kind",
            "status",
            "profile",
            "subject",
            "subject_hashes",
            "received_at",
            "due_on",
            "original_due_on",
            "extension_reason",
            "extended_at",
            "overdue",
            "changes",
            "notes",
            "resolution",
            "outcome",
            "export_url",
            "handled_by",
            "completed_at",
            "created_by",
            "created_at",
        ]

    def get_overdue(self, obj) -> bool:
        return obj.open and obj.due_on < timezone.localdate()

    def get_export_url(self, obj) -> str | None:
        if not obj.export_file:
            return None
        return f"/api/workspaces/{obj.workspace.slug}/privacy-requests/{obj.pk}/export/"


class RequestInput(StrictInput, serializers.Serializer):
    kind = serializers.ChoiceField(choices=DataSubjectRequest.Kind.choices)
    profile = serializers.IntegerField(required=False, allow_null=True)
    subject = CharField(max_length=254, required=False, allow_blank=True, default="")
    received_at = DateTimeField(required=False, help_text="Defaults to now.")
    changes = serializers.DictField(required=False, help_text="Rectification: the profile fields to correct.")
    notes = CharField(required=False, allow_blank=True, default="")


class RequestUpdateInput(StrictInput, serializers.Serializer):
    changes = serializers.DictField(required=False)
    notes = CharField(required=False, allow_blank=True)


class RequestReasonInput(StrictInput, serializers.Serializer):
    reason = CharField(max_length=2000, allow_blank=True)


class DestinationOutput(serializers.Serializer):
    type = CharField()
    id = serializers.IntegerField()
    channel = CharField()
    at = DateTimeField()
    has_file = BooleanField()


class SuppressionOutput(serializers.ModelSerializer):
    class Meta:
        model = Suppression
        fields = ["id", "kind", "hash", "reason", "request", "created_at", "created_by"]


class SuppressionInput(StrictInput, serializers.Serializer):
    identifier = CharField(max_length=254, help_text="An e-mail or phone; only its hash is kept.")


class AuditEntryOutput(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = ["id", "at", "actor", "actor_name", "action", "object_type", "object_id", "profile_id", "detail"]


class RemovalNoticeOutput(serializers.ModelSerializer):
    class Meta:
        model = RemovalNotice
        fields = [
            "id",
            "profile",
            "request",
            "channel",
            "destinations",
            "reason",
            "payload",
            "status",
            "attempts",
            "error",
            "created_at",
            "sent_at",
        ]


class RetentionPolicySerializer(serializers.ModelSerializer):
    updated_at = DateTimeField(read_only=True, allow_null=True, help_text="Null until first changed.")

    class Meta:
        model = RetentionPolicy
        fields = [
            "events_months",
            "inactive_prospect_months",
            "export_files_days",
            "last_purge_at",
            "last_purge",
            "updated_at",
        ]
        read_only_fields = ["last_purge_at", "last_purge", "updated_at"]
        extra_kwargs = {
            "events_months": {"min_value": 1, "max_value": 240},
            "inactive_prospect_months": {"min_value": 1, "max_value": 240},
            "export_files_days": {"min_value": 1, "max_value": 3650},
        }


class ProcessingRecordOutput(serializers.Serializer):
    category = CharField()
    table = CharField()
    # Named like Serializer.fields: DRF's metaclass takes declared fields off the class, so nothing is
    # shadowed at runtime; the stubs only see a field overriding the attribute.
    fields = ListField(child=CharField())  # type: ignore[assignment]
    subjects = CharField()
    purposes = ListField(child=CharField())
    legal_basis = CharField()
    retention = CharField()
    recipients = ListField(child=CharField())
    erasure = CharField()


class PurgeOutput(serializers.Serializer):
    purged = serializers.DictField(child=serializers.IntegerField())
    more = BooleanField()
