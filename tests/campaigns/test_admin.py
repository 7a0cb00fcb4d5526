"""The campaign admin: list columns, targets inline, the lifecycle and budget buttons, roles and tenancy."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, LedgerEntry, Target, Transition
from tests.factories import make_campaign, make_profile, make_segment, make_user


@pytest.fixture
def segment(workspace):
    make_profile(workspace=workspace, country="FR")
    return make_segment(workspace=workspace, name="Everyone")


@pytest.fixture
def staff(client, workspace):
    client.force_login(make_user(workspace=workspace, role="marketer"))
    return client


def change(campaign):
    return reverse("admin:campaigns_campaign_change", args=[campaign.pk])


def post(client, name, campaign, data=None):
    return client.post(reverse(f"admin:campaigns_campaign_{name}", args=[campaign.pk]), data or {}, follow=True)


def inline(prefix="targets", **target):
    data = {
        f"{prefix}-TOTAL_FORMS": "1",
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    defaults = {"mode": "macro", "variant": "A", "restriction": "", "trigger_properties": "{}"}
    data.update({f"{prefix}-0-{k}": v for k, v in {**defaults, **target}.items()})
    return data


def add_form(workspace, **fields):
    return {
        "workspace": workspace.pk,
        "name": "Winter sale",
        "objective": "conversion",
        "channels": ["email", "sms"],
        "starts_at_0": "2027-01-10",
        "starts_at_1": "09:00:00",
        "ends_at_0": "2027-01-31",
        "ends_at_1": "20:00:00",
        "currency": "",
        "budget_total": "1000.00",
        "budget_daily": "",
        "pacing": "even",
        **fields,
    }


def test_a_marketer_adds_a_campaign_with_a_target_in_the_workspace_time_zone(staff, workspace, segment):
    data = {**add_form(workspace), **inline(segment=segment.pk, subject_template="Hi {{first_name}}")}
    r = staff.post(reverse("admin:campaigns_campaign_add"), data)
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    campaign = Campaign.objects.get()
    assert campaign.starts_at.isoformat() == "2027-01-10T08:00:00+00:00"  # 09:00 in Paris
    assert (campaign.currency, campaign.channels, campaign.status) == ("EUR", ["email", "sms"], "draft")
    assert Target.objects.get().subject_template == "Hi {{first_name}}"


def test_bad_targets_are_form_errors(staff, workspace, segment):
    data = {**add_form(workspace), **inline(segment=segment.pk, body_template="{{nope}}")}
    r = staff.post(reverse("admin:campaigns_campaign_add"), data)
    assert r.status_code == 200 and "Unknown tokens: nope." in r.content.decode()
    assert not Campaign.objects.exists()


def test_budgets_that_contradict_themselves_are_form_errors(staff, workspace, segment):
    data = {**add_form(workspace, budget_daily="2000.00"), **inline(segment=segment.pk)}
    r = staff.post(reverse("admin:campaigns_campaign_add"), data)
    assert r.status_code == 200
    assert "The daily budget (2000.00) is above the total budget (1000.00)." in r.content.decode()
    first = inline(segment=segment.pk, budget_share="70")
    second = {
        k.replace("-0-", "-1-"): v
        for k, v in inline(segment=segment.pk, variant="B", budget_share="40").items()
        if "-0-" in k
    }
    two = {**first, **second, "targets-TOTAL_FORMS": "2"}
    data = {**add_form(workspace), **two}
    r = staff.post(reverse("admin:campaigns_campaign_add"), data)
    assert r.status_code == 200
    assert "The targets&#x27; budget shares add up to 110 %, more than 100 %." in r.content.decode()
    assert not Campaign.objects.exists()


def test_the_list_shows_status_budget_and_spend(staff, workspace, segment):
    campaign = make_campaign(workspace=workspace, segment=segment, budget_total="200.00", name="Spring")
    Campaign.objects.filter(pk=campaign.pk).update(spent="50.00", status="active")
    page = staff.get(reverse("admin:campaigns_campaign_changelist") + "?status__exact=active").content.decode()
    assert "Spring" in page and "200.00 EUR" in page and "50.00 EUR (25%)" in page


def test_lifecycle_and_budget_buttons(staff, workspace, segment, eager_tasks):
    campaign = make_campaign(workspace=workspace, segment=segment, budget_total="100.00")
    page = staff.get(change(campaign)).content.decode()
    assert "Activate" in page and "Resume" not in page
    assert "the campaign is active" in post(staff, "activate", campaign).content.decode()
    assert "Paused." in post(staff, "pause", campaign, {"action-reason": "too costly"}).content.decode()
    assert "the campaign is active" in post(staff, "resume", campaign).content.decode()
    r = post(staff, "budget", campaign, {"budget-total": "150.00", "action-reason": ""})
    assert "Reason: Say why the budget changes." in r.content.decode()
    r = post(staff, "budget", campaign, {"budget-total": "150.00", "action-reason": "good ROAS"})
    assert "Budget changed." in r.content.decode()
    assert LedgerEntry.objects.get(kind="budget_total").reason == "good ROAS"
    r = post(staff, "cancel", campaign, {"action-reason": ""})
    assert "Reason: Say why the campaign is cancelled." in r.content.decode()
    r = post(staff, "cancel", campaign, {"action-reason": "stock-out"})
    assert "Cancelled." in r.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == "cancelled" and campaign.budget_total == 150
    assert list(Transition.objects.order_by("id").values_list("to_status", "source")) == [
        ("scheduled", "admin"),
        ("active", "admin"),
        ("paused", "admin"),
        ("active", "admin"),
        ("cancelled", "admin"),
    ]
    r = post(staff, "pause", campaign)
    assert "A cancelled campaign cannot become paused." in r.content.decode()


def test_a_viewer_sees_the_campaign_without_buttons_and_cannot_act(client, workspace, segment):
    campaign = make_campaign(workspace=workspace, segment=segment)
    client.force_login(make_user(workspace=workspace, role="viewer"))
    page = client.get(change(campaign)).content.decode()
    assert campaign.name in page and "formaction" not in page
    for name in ("activate", "pause", "resume", "cancel", "budget"):
        assert client.post(reverse(f"admin:campaigns_campaign_{name}", args=[campaign.pk])).status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_another_workspaces_campaign_is_out_of_reach(staff, other_workspace):
    make_profile(workspace=other_workspace, country="FR")
    theirs = make_campaign(workspace=other_workspace, segment=make_segment(workspace=other_workspace), name="Theirs")
    assert staff.get(change(theirs)).status_code == 302  # the admin's "does not exist" redirect
    for name in ("activate", "pause", "cancel", "budget"):
        assert staff.post(reverse(f"admin:campaigns_campaign_{name}", args=[theirs.pk])).status_code == 404
    assert "Theirs" not in staff.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert "Theirs" not in staff.get(reverse("admin:campaigns_ledgerentry_changelist")).content.decode()


def test_a_running_campaigns_targets_are_fixed(staff, workspace, segment):
    campaign = make_campaign(workspace=workspace, segment=segment, starts_at=timezone.now() - timedelta(hours=1))
    Campaign.objects.filter(pk=campaign.pk).update(status="active")
    page = staff.get(change(campaign)).content.decode()
    assert 'name="targets-0-variant"' not in page  # shown read-only
    assert 'name="name"' not in page
