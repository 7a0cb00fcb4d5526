"""The admin applies the API's tenancy: a member sees and changes only their workspaces."""

import pytest
from django.urls import reverse

from customers.models import Profile
from privacy.models import ConsentRecord
from tests.factories import make_consent, make_profile, make_user


@pytest.fixture
def marketer_browser(client, workspace):
    client.force_login(make_user(workspace=workspace, role="marketer"))
    return client


@pytest.fixture
def profiles(workspace, other_workspace):
    return make_profile(workspace=workspace, external_id="MINE-1"), make_profile(
        workspace=other_workspace, external_id="THEIRS-1"
    )


def test_the_changelist_shows_only_my_workspaces_profiles(marketer_browser, profiles):
    page = marketer_browser.get(reverse("admin:customers_profile_changelist")).content.decode()
    assert "MINE-1" in page and "THEIRS-1" not in page


def test_another_workspaces_profile_cannot_be_opened_or_changed(marketer_browser, profiles):
    _, theirs = profiles
    r = marketer_browser.get(reverse("admin:customers_profile_change", args=[theirs.pk]))
    assert r.status_code == 302  # the admin's "does not exist" redirect to the index
    r = marketer_browser.post(
        reverse("admin:customers_profile_change", args=[theirs.pk]),
        {"external_id": "HACKED", "workspace": theirs.workspace_id},
    )
    theirs.refresh_from_db()
    assert theirs.external_id == "THEIRS-1"


def test_a_profile_cannot_be_added_to_another_workspace(marketer_browser, other_workspace):
    r = marketer_browser.post(
        reverse("admin:customers_profile_add"),
        {
            "workspace": other_workspace.pk,
            "external_id": "X",
            "lifecycle_stage": "prospect",
            "gender": "unknown",
            "attributes": "{}",
            "identities-TOTAL_FORMS": "0",
            "identities-INITIAL_FORMS": "0",
        },
    )
    assert r.status_code == 200
    assert "Select a valid choice" in r.content.decode()
    assert not Profile.objects.filter(external_id="X").exists()


def test_a_marketer_adds_a_profile_in_the_admin(marketer_browser, workspace):
    r = marketer_browser.post(
        reverse("admin:customers_profile_add"),
        {
            "workspace": workspace.pk,
            "external_id": "NEW-1",
            "lifecycle_stage": "prospect",
            "gender": "female",
            "email": "New@Example.com",
            "attributes": "{}",
            "identities-TOTAL_FORMS": "0",
            "identities-INITIAL_FORMS": "0",
            "orders-TOTAL_FORMS": "0",
            "orders-INITIAL_FORMS": "0",
            "survey_responses-TOTAL_FORMS": "0",
            "survey_responses-INITIAL_FORMS": "0",
        },
    )
    assert r.status_code == 302, r.content.decode()[:3000]
    profile = Profile.objects.get(workspace=workspace, external_id="NEW-1")
    assert profile.identities.filter(type="email", value="new@example.com").exists()


def test_a_viewer_cannot_add_or_change(client, workspace, profiles):
    client.force_login(make_user(workspace=workspace, role="viewer"))
    mine, _ = profiles
    assert client.get(reverse("admin:customers_profile_add")).status_code == 403
    page = client.get(reverse("admin:customers_profile_change", args=[mine.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()


def test_consent_records_are_read_only_in_the_admin(client, workspace, profiles):
    client.force_login(make_user(workspace=workspace, role="admin"))
    record = make_consent(profile=profiles[0])
    page = client.get(reverse("admin:privacy_consentrecord_change", args=[record.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert (
        client.post(reverse("admin:privacy_consentrecord_delete", args=[record.pk]), {"post": "yes"}).status_code == 403
    )
    assert ConsentRecord.objects.filter(pk=record.pk).exists()


def test_merge_action_needs_the_merge_right(client, workspace):
    a = make_profile(workspace=workspace, external_id="A")
    b = make_profile(workspace=workspace, external_id="B")
    client.force_login(make_user(workspace=workspace, role="marketer"))
    url = reverse("admin:customers_profile_changelist")
    client.post(url, {"action": "merge_profiles", "_selected_action": [a.pk, b.pk]})
    assert Profile.objects.filter(pk=b.pk).exists()
    client.force_login(make_user(workspace=workspace, role="manager"))
    client.post(url, {"action": "merge_profiles", "_selected_action": [a.pk, b.pk]})
    assert not Profile.objects.filter(pk=b.pk).exists()


def test_no_list_filter_names_another_workspace(client, workspace, other_workspace):
    """Every scoped admin's list, filters included: the other workspace's name appears nowhere."""
    from django.contrib import admin

    from accounts.admin_base import WorkspaceScopedAdmin
    from programmatic.models import BidDay, LineItem
    from tests.factories import make_running_campaign

    client.force_login(make_user(workspace=workspace, role="admin"))
    theirs = make_running_campaign(workspace=other_workspace, channels=("display",), name="Secret launch")
    line = LineItem.objects.create(target=theirs.targets.get(), base_cpm=2, min_cpm=1, max_cpm=6)
    BidDay.objects.create(workspace=other_workspace, line_item=line, day="2026-12-01", bids=1)
    make_profile(workspace=other_workspace, external_id="THEIRS-1", region="Secret region")
    checked = 0
    for model, model_admin in admin.site._registry.items():
        if not isinstance(model_admin, WorkspaceScopedAdmin) or not model_admin.list_filter:
            continue
        meta = model._meta
        page = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        assert page.status_code == 200, meta.label
        html = page.content.decode()
        for secret in (other_workspace.name, "Secret launch", "Secret region"):
            assert secret not in html, (meta.label, secret)
        checked += 1
    assert checked >= 20
