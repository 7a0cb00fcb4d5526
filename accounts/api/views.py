from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken

from accounts.api.base import ReadOnlyWorkspaceViewSet
from accounts.api.serializers import MembershipSerializer, WorkspaceSerializer
from accounts.api.throttles import LoginAddressThrottle, LoginUsernameThrottle
from accounts.models import Membership, Workspace
from accounts.roles import Capability, role_can
from accounts.selectors import user_roles, workspace_list
from accounts.services import workspace_update
from core.api import FilterBackend, FilterSet


class WorkspaceFilter(FilterSet):
    class Meta:
        model = Workspace
        fields = ["slug", "currency", "country"]


class WorkspaceViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    """The workspaces you are a member of, with your role in each."""

    serializer_class = WorkspaceSerializer
    lookup_field = "slug"
    filter_backends = [FilterBackend]
    filterset_class = WorkspaceFilter

    def get_queryset(self):
        return workspace_list(user=self.request.user)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "roles": user_roles(user=self.request.user)}

    def perform_update(self, serializer):
        role = user_roles(user=self.request.user).get(serializer.instance.pk)
        if not role_can(role, Capability.MANAGE_WORKSPACE):
            raise PermissionDenied(gettext("Only a workspace admin can change its settings."))
        serializer.instance = workspace_update(workspace=serializer.instance, **serializer.validated_data)


class MembershipFilter(FilterSet):
    class Meta:
        model = Membership
        fields = ["role", "user"]


class MembershipViewSet(ReadOnlyWorkspaceViewSet):
    """Members of the workspace and their roles."""

    model = Membership
    serializer_class = MembershipSerializer
    filterset_class = MembershipFilter
    ordering_fields = ["created_at", "role"]

    def scoped_queryset(self, queryset):
        return queryset.select_related("user")


class TokenExchange(AuthTokenSerializer):
    """A username and password, within the lengths a user model holds; answered with the token."""

    username = serializers.CharField(label="Username", write_only=True, max_length=150)
    password = serializers.CharField(
        label="Password", style={"input_type": "password"}, trim_whitespace=False, write_only=True, max_length=4096
    )


@extend_schema(
    request=TokenExchange,
    responses={
        200: TokenExchange,
        400: OpenApiResponse(description="Wrong credentials."),
        429: OpenApiResponse(description="Too many attempts: wait and try again."),
    },
)
class TokenView(ObtainAuthToken):
    """Exchange a username and password for the API token (Authorization: Bearer <token>).

    A token sent along is ignored here: attempts are throttled by address and by username.
    """

    authentication_classes: list = []
    throttle_classes = [LoginAddressThrottle, LoginUsernameThrottle]
    serializer_class = TokenExchange
