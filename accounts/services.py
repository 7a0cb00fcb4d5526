from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext
from rest_framework.authtoken.models import Token

from accounts.models import Membership, Role, Workspace
from core.errors import CommonErrorCode, json_literal

User = get_user_model()


@transaction.atomic
def workspace_create(*, name: str, slug: str, currency: str = "EUR", time_zone: str = "Europe/Paris") -> Workspace:
    workspace = Workspace(name=name, slug=slug, currency=currency, time_zone=time_zone)
    workspace.full_clean()
    workspace.save()
    return workspace


@transaction.atomic
def membership_set(*, workspace: Workspace, user, role: str) -> Membership:
    """Give the user this role in the workspace (creating the membership if needed).

    Members use the admin, so the user becomes staff; what they see there is
    still limited to their workspaces and role.
    """
    if role not in Role.values:
        raise ValidationError(
            {
                "role": ValidationError(
                    gettext("Unknown role %(value)s.") % {"value": json_literal(role)},
                    code=CommonErrorCode.INVALID_CHOICE,
                )
            }
        )
    membership, _ = Membership.objects.select_for_update().get_or_create(
        user=user, workspace=workspace, defaults={"role": role}
    )
    if membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return membership


def token_get_or_create(*, user) -> Token:
    token, _ = Token.objects.get_or_create(user=user)
    return token


@transaction.atomic
def workspace_update(*, workspace: Workspace, **fields) -> Workspace:
    workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
    for name, value in fields.items():
        setattr(workspace, name, value)
    workspace.full_clean()
    workspace.save()
    return workspace
