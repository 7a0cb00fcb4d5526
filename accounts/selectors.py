import functools

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from accounts.access_cache import membership_found
from accounts.models import Membership, Role, Workspace


def workspace_list(*, user: User | AnonymousUser) -> QuerySet[Workspace]:
    return Workspace.objects.for_user(user)


def workspace_membership(*, user: User | AnonymousUser, slug: str) -> tuple[Workspace, str] | None:
    """The workspace with this slug and the user's role in it, in one query; None when the user is
    not a member (or no such workspace exists: the caller cannot tell the two apart). Kept in the
    access cache between requests (accounts.access_cache), revoked at once by any change."""
    if not user.is_authenticated:
        return None
    return membership_found(user_id=user.pk, slug=slug, read=functools.partial(_membership, user=user, slug=slug))


def _membership(*, user: User, slug: str) -> tuple[Workspace, str] | None:
    if user.is_superuser:
        workspace = Workspace.objects.filter(slug=slug).first()
        return None if workspace is None else (workspace, Role.ADMIN)
    membership = Membership.objects.select_related("workspace").filter(user=user, workspace__slug=slug).first()
    return None if membership is None else (membership.workspace, membership.role)


def user_roles(*, user: User | AnonymousUser) -> dict[int, str]:
    """Workspace id -> role, for the admin, which shows several workspaces at once."""
    if not user.is_authenticated:
        return {}
    if user.is_superuser:
        return {pk: Role.ADMIN for pk in Workspace.objects.values_list("pk", flat=True)}
    return dict(Membership.objects.filter(user=user).values_list("workspace_id", "role"))
