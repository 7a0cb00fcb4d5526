import zoneinfo

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Membership, Workspace, validate_time_zone
from core.serializers import CharField


@extend_schema_field({"type": "string", "enum": sorted(zoneinfo.available_timezones()), "maxLength": 64})
class TimeZoneField(CharField):
    """An IANA time zone name (Europe/Paris); the model's validator says which names it knows."""


class WorkspaceSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()
    time_zone = TimeZoneField(required=False, max_length=64, validators=[validate_time_zone])

    class Meta:
        model = Workspace
        fields = ["id", "name", "slug", "currency", "time_zone", "country", "role", "created_at"]
        read_only_fields = ["id", "slug", "created_at"]

    def get_role(self, workspace) -> str | None:
        return self.context.get("roles", {}).get(workspace.pk)


class MembershipSerializer(serializers.ModelSerializer):
    username = CharField(source="user.username", read_only=True)
    email = CharField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "username", "email", "role", "created_at"]
