from rest_framework import serializers

from accounts.models import Membership, Workspace
from core.serializers import CharField


class WorkspaceSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

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
