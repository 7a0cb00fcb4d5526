from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Membership, Workspace, validate_time_zone
from core.serializers import CharField


@extend_schema_field(
    {
        "type": "string",
        "maxLength": 64,
        "pattern": r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$",
        "description": "An IANA time zone name, such as Europe/Paris (refused with invalid_time_zone otherwise).",
    }
)
class TimeZoneField(CharField):
    """An IANA time zone name (Europe/Paris); the model's validator says which names it knows. The
    schema gives the form, not the list: its ~600 names include aliases (GMT+0, GMT-0, GMT0) that
    generated clients cannot tell apart as enum members."""


class WorkspaceSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()
    time_zone = TimeZoneField(required=False, max_length=64, validators=[validate_time_zone])

    class Meta:
        model = Workspace
        fields = ["id", "name", "slug", "currency", "time_zone", "country", "language", "role", "created_at"]
        read_only_fields = ["id", "slug", "created_at"]

    def get_role(self, workspace) -> str | None:
        return self.context.get("roles", {}).get(workspace.pk)


class MembershipSerializer(serializers.ModelSerializer):
    username = CharField(source="user.username", read_only=True)
    email = CharField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "username", "email", "role", "created_at"]
