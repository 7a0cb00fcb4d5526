"""Tokens and memberships are cached between requests and revoked at once (accounts.access_cache)."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import Membership, Role, Workspace
from accounts.services import membership_set, workspace_update
from tests.factories import make_user, token_for

pytestmark = pytest.mark.django_db


def _get(client, slug="maison"):
    return client.get(f"/api/workspaces/{slug}/profiles/")


def test_a_second_request_reads_neither_the_token_nor_the_membership(marketer):
    assert _get(marketer).status_code == 200
    with CaptureQueriesContext(connection) as first:
        _get(marketer)
    tables = " ".join(q["sql"] for q in first.captured_queries)
    assert "authtoken_token" not in tables
    assert "accounts_membership" not in tables
    assert _get(marketer).status_code == 200


def test_a_deleted_token_is_refused_on_the_next_request(marketer):
    assert _get(marketer).status_code == 200
    Token.objects.filter(user=marketer.user).get().delete()
    assert _get(marketer).status_code == 401


def test_a_new_token_replaces_the_old_one_at_once(marketer):
    old = Token.objects.get(user=marketer.user)
    assert _get(marketer).status_code == 200
    old.delete()
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(marketer.user)}")
    assert _get(marketer).status_code == 401
    assert _get(fresh).status_code == 200


def test_a_deactivated_user_is_refused_on_the_next_request(marketer):
    assert _get(marketer).status_code == 200
    user = get_user_model().objects.get(pk=marketer.user.pk)
    user.is_active = False
    user.save()
    assert _get(marketer).status_code == 401


def test_a_removed_membership_is_a_404_on_the_next_request(marketer, workspace):
    assert _get(marketer).status_code == 200
    Membership.objects.get(user=marketer.user, workspace=workspace).delete()
    assert _get(marketer).status_code == 404


def test_a_lowered_role_loses_its_rights_on_the_next_request(marketer, workspace):
    body = {"external_id": "cached-role", "email": "c@example.com"}
    assert marketer.post("/api/workspaces/maison/profiles/", body, format="json").status_code == 201
    membership_set(workspace=workspace, user=marketer.user, role=Role.VIEWER)
    body["external_id"] = "cached-role-2"
    assert marketer.post("/api/workspaces/maison/profiles/", body, format="json").status_code == 403


def test_a_new_membership_is_honoured_at_once(workspace, other_workspace, marketer):
    assert _get(marketer, "rival").status_code == 404  # a refusal is cached too...
    membership_set(workspace=other_workspace, user=marketer.user, role=Role.VIEWER)
    assert _get(marketer, "rival").status_code == 200  # ...and revoked by the new membership


def test_a_renamed_workspace_is_not_found_under_its_old_slug(marketer, workspace):
    assert _get(marketer).status_code == 200
    workspace_update(workspace=workspace, slug="maison-2")
    assert _get(marketer).status_code == 404
    assert _get(marketer, "maison-2").status_code == 200


def test_a_changed_time_zone_is_read_on_the_next_request(marketer, workspace):
    profile = marketer.post("/api/workspaces/maison/profiles/", {"external_id": "tz"}, format="json").json()
    assert profile["created_at"].endswith(("+01:00", "+02:00"))
    workspace_update(workspace=workspace, time_zone="UTC")
    again = marketer.get(f"/api/workspaces/maison/profiles/{profile['id']}/").json()
    assert again["created_at"].endswith("Z")


def test_another_users_cached_membership_gives_nothing_to_a_stranger(marketer, workspace):
    assert _get(marketer).status_code == 200  # the marketer's membership is cached
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(make_user())}")
    assert _get(stranger).status_code == 404


def test_a_workspace_deleted_is_gone_at_once(marketer, workspace):
    assert _get(marketer).status_code == 200
    Workspace.objects.get(pk=workspace.pk).delete()
    assert _get(marketer).status_code == 404
