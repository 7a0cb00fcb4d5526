"""The campaigns API: create with targets, the lifecycle actions, budget and spend, filters, roles, tenancy."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.models import Campaign, Connector, LedgerEntry, Transition
from tests.factories import make_campaign, make_profile, make_segment

BASE = "/api/workspaces/maison/campaigns/"


def url(campaign=None, action=""):
    return BASE + (f"{campaign.pk}/" if campaign else "") + (f"{action}/" if action else "")


@pytest.fixture
def segment(workspace):
    make_profile(workspace=workspace, country="FR")
    return make_segment(workspace=workspace, name="Everyone")


def body(segment, **fields):
    return {
        "name": "Spring sale",
        "objective": "conversion",
        "channels": ["email", "sms"],
        "starts_at": "2027-03-01T09:00:00",
        "ends_at": "2027-03-31T20:00:00",
        "budget_total": "5000.00",
        "budget_daily": "300.00",
        "pacing": "even",
        "targets": [
            {
                "segment": segment.pk,
                "variant": "A",
                "subject_template": "{{first_name}}, spring is here",
                "discount_code": "SPRING",
                "discount_percent": "15",
                "budget_share": "60",
                "restriction": {"field": "region", "op": "eq", "value": "Bretagne"},
            }
        ],
        **fields,
    }


def test_a_marketer_creates_a_campaign_with_its_targets_in_the_workspace_time_zone(marketer, segment):
    r = marketer.post(BASE, body(segment), format="json")
    assert r.status_code == 201, r.json()
    data = r.json()
    assert data["status"] == "draft" and data["currency"] == "EUR" and data["spent"] == "0.00"
    # No offset given: read in Europe/Paris (UTC+1 in March before the change), answered with the offset.
    assert data["starts_at"] == "2027-03-01T09:00:00+01:00"
    assert Campaign.objects.get().starts_at.isoformat() == "2027-03-01T08:00:00+00:00"
    (target,) = data["targets"]
    assert (target["segment"], target["budget_share"], target["discount_percent"]) == (segment.pk, "60.00", "15.00")
    assert target["restriction"] == {"field": "region", "op": "eq", "value": "Bretagne"}


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"channels": ["email", "pigeon"]}, "channels", "not a valid choice"),
        ({"channels": []}, "channels", "may not be empty"),
        ({"ends_at": "2027-02-01T00:00:00"}, "ends_at", "after the start"),
        ({"budget_total": "-5"}, "budget_total", "greater than or equal to 0"),
        ({"name": ""}, "name", "may not be blank"),
        # Found by the schema fuzzer: year 706 in Paris has a local-mean-time offset of +00:09:21.
        ({"starts_at": "0706-07-07T18:21:51Z"}, "starts_at", "between 2000 and 2100"),
        # Budgets that contradict themselves.
        ({"budget_total": "100.00", "budget_daily": "300.00"}, "budget_daily", "above the total budget (100.00)"),
    ],
)
def test_bad_campaigns_get_a_400_naming_the_field(marketer, segment, change, field, fragment):
    r = marketer.post(BASE, body(segment, **change), format="json")
    assert r.status_code == 400
    assert fragment in str(r.json()[field])
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(
    ("target", "field"),
    [
        ({"restriction": {"field": "age", "op": "gte", "value": 30}}, "restriction"),
        ({"subject_template": "Hi {{password}}"}, "subject_template"),
        ({"trigger_event": "teleport", "trigger_delay": "PT1H", "segment": None}, "trigger_event"),
        ({"mode": "fine"}, "min_probability"),
    ],
)
def test_bad_targets_are_refused_whole(marketer, segment, target, field):
    spec = body(segment)
    spec["targets"][0].update(target)
    r = marketer.post(BASE, spec, format="json")
    assert r.status_code == 400, r.json()
    assert field in r.json()
    assert not Campaign.objects.exists()  # nothing half-written


def test_target_shares_are_percentages_adding_up_to_100_at_most(marketer, segment):
    spec = body(segment)
    second = {**spec["targets"][0], "variant": "B", "budget_share": "50"}
    spec["targets"].append(second)  # 60 + 50
    r = marketer.post(BASE, spec, format="json")
    assert r.status_code == 400
    assert r.json()["targets"] == [
        {"message": "The targets' budget shares add up to 110.00 %, more than 100 %.", "code": "over_100"}
    ]
    assert not Campaign.objects.exists()  # nothing half-written
    spec["targets"][0]["budget_share"] = "101"
    assert "budget_share" in str(marketer.post(BASE, spec, format="json").json()["targets"])
    spec["targets"][0]["budget_share"] = "50"
    assert marketer.post(BASE, spec, format="json").status_code == 201


def test_a_date_alone_is_a_whole_day_of_the_workspace(marketer, segment):
    r = marketer.post(BASE, body(segment, starts_at="2027-03-01", ends_at="2027-03-31"), format="json")
    assert r.status_code == 201, r.json()
    # The campaign starts when 1 March starts in Paris and runs all of 31 March (CEST by then).
    assert (r.json()["starts_at"], r.json()["ends_at"]) == (
        "2027-03-01T00:00:00+01:00",
        "2027-03-31T23:59:59.999999+02:00",
    )
    campaign = Campaign.objects.get()
    assert campaign.ends_at.isoformat() == "2027-03-31T21:59:59.999999+00:00"


def test_a_daily_budget_above_the_total_is_refused_by_the_budget_action(marketer, segment):
    campaign = marketer.post(BASE, body(segment), format="json").json()
    r = marketer.post(f"{BASE}{campaign['id']}/budget/", {"total": "200.00", "reason": "cut"}, format="json")
    assert r.status_code == 400
    assert r.json()["total"][0]["code"] == "daily_above_total"  # the daily cap of 300.00 stays
    r = marketer.post(f"{BASE}{campaign['id']}/budget/", {"daily": "6000", "reason": "more"}, format="json")
    assert (r.status_code, r.json()["daily"][0]["code"]) == (400, "daily_above_total")
    r = marketer.post(
        f"{BASE}{campaign['id']}/budget/", {"total": "200", "daily": "20", "reason": "cut"}, format="json"
    )
    assert r.status_code == 200, r.json()
    assert (r.json()["budget_total"], r.json()["budget_daily"]) == ("200.00", "20.00")


def test_the_lifecycle_through_the_api_with_its_log(marketer, segment, eager_tasks):
    r = marketer.post(BASE, body(segment, starts_at=(timezone.now() - timedelta(hours=1)).isoformat()), format="json")
    campaign = Campaign.objects.get(pk=r.json()["id"])
    assert marketer.post(url(campaign, "activate"), {}, format="json").json()["status"] == "active"
    assert marketer.post(url(campaign, "pause"), {"reason": "CPA too high"}, format="json").json()["status"] == "paused"
    assert marketer.post(url(campaign, "resume"), {}, format="json").json()["status"] == "active"
    r = marketer.post(url(campaign, "cancel"), {}, format="json")
    assert r.status_code == 400 and "reason" in r.json()
    assert (
        marketer.post(url(campaign, "cancel"), {"reason": "stock-out"}, format="json").json()["status"] == "cancelled"
    )
    r = marketer.post(url(campaign, "pause"), {}, format="json")
    assert r.status_code == 400
    assert r.json()["status"][0] == {
        "message": "A cancelled campaign cannot become paused.",
        "code": "illegal_transition",
    }
    log = marketer.get(url(campaign, "transitions")).json()["results"]
    assert [(t["from_status"], t["to_status"]) for t in reversed(log)] == [
        ("draft", "scheduled"),
        ("scheduled", "active"),
        ("active", "paused"),
        ("paused", "active"),
        ("active", "cancelled"),
    ]
    assert log[0]["reason"] == "stock-out" and log[0]["actor"] == marketer.user.pk


def test_budget_and_spend_through_the_api(marketer, segment):
    campaign = make_campaign(workspace=segment.workspace, segment=segment, budget_total="100.00")
    Campaign.objects.filter(pk=campaign.pk).update(status="active")
    spend = {"amount": "40.00", "idempotency_key": "fb-2027-03-01", "source": "facebook"}
    assert marketer.post(url(campaign, "spend"), spend, format="json").status_code == 201
    assert marketer.post(url(campaign, "spend"), spend, format="json").status_code == 200  # replay
    r = marketer.post(url(campaign, "spend"), {**spend, "idempotency_key": "big", "amount": "70.00"}, format="json")
    assert r.status_code == 400 and r.json()["amount"][0]["code"] == "budget_exceeded"
    r = marketer.post(url(campaign, "spend"), {**spend, "idempotency_key": "x", "currency": "USD"}, format="json")
    assert r.status_code == 400 and "currency" in r.json()
    r = marketer.post(url(campaign, "budget"), {"total": "200.00"}, format="json")
    assert r.status_code == 400 and "reason" in r.json()
    r = marketer.post(url(campaign, "budget"), {"total": "200.00", "reason": "ROAS 4"}, format="json")
    assert r.json()["budget_total"] == "200.00" and r.json()["spent"] == "40.00"
    kinds = [e["kind"] for e in marketer.get(url(campaign, "ledger")).json()["results"]]
    assert kinds == ["budget_total", "spend"]


def test_a_viewer_cannot_pause_or_change_a_budget(viewer, marketer, segment):
    campaign = make_campaign(workspace=segment.workspace, segment=segment, budget_total="100.00")
    Campaign.objects.filter(pk=campaign.pk).update(status="active")
    assert viewer.get(url(campaign)).status_code == 200
    assert viewer.post(url(campaign, "pause"), {}, format="json").status_code == 403
    assert viewer.post(url(campaign, "budget"), {"total": "1", "reason": "x"}, format="json").status_code == 403
    assert (
        viewer.post(url(campaign, "spend"), {"amount": "1", "idempotency_key": "k"}, format="json").status_code == 403
    )
    assert viewer.post(BASE, body(segment), format="json").status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == "active" and not LedgerEntry.objects.exists()
    assert not Transition.objects.exists()


def test_filters_by_status_channel_date_and_segment(marketer, workspace, segment):
    other = make_segment(workspace=workspace, name="Other")
    now = timezone.now()
    email = make_campaign(workspace=workspace, segment=segment, channels=("email",), name="E")
    social = make_campaign(
        workspace=workspace,
        segment=other,
        channels=("social", "display"),
        name="S",
        starts_at=now + timedelta(days=40),
        ends_at=now + timedelta(days=50),
    )
    Campaign.objects.filter(pk=social.pk).update(status="paused")

    def names(query):
        return {c["name"] for c in marketer.get(BASE + "?" + query).json()["results"]}

    assert names("status=paused") == {"S"}
    assert names("channel=display") == {"S"}
    assert names("channel=email") == {"E"}
    assert names(f"segment={segment.pk}") == {"E"}
    assert names(f"starts_after={(now + timedelta(days=30)).isoformat().replace('+', '%2B')}") == {"S"}
    assert names(f"running_on={(now + timedelta(days=45)).date()}") == {"S"}
    assert marketer.get(BASE + "?channel=pigeon").status_code == 400
    # Found by the schema fuzzer: an offset PostgreSQL refuses was a 500; it is converted to UTC first.
    r = marketer.get(BASE + "?starts_after=2027-01-01T03%3A48%3A21%2B22%3A19")
    assert r.status_code == 200 and {c["name"] for c in r.json()["results"]} == {"S"}
    assert email.pk


def test_another_workspaces_campaigns_and_segments_are_out_of_reach(marketer, outsider, other_workspace, segment):
    make_profile(workspace=other_workspace, country="FR")
    theirs_segment = make_segment(workspace=other_workspace)
    theirs = make_campaign(workspace=other_workspace, segment=theirs_segment)
    for action in ("", "ledger", "transitions"):
        assert marketer.get(url(theirs, action)).status_code == 404
    for action in ("activate", "pause", "cancel", "budget", "spend"):
        assert marketer.post(url(theirs, action), {"reason": "x"}, format="json").status_code == 404
    assert theirs.name not in str(marketer.get(BASE).json())
    # A target on another workspace's segment: that id does not exist here.
    spec = body(segment)
    spec["targets"][0]["segment"] = theirs_segment.pk
    r = marketer.post(BASE, spec, format="json")
    assert r.status_code == 400 and "does not exist" in str(r.json()["targets"])
    # And a member of the other workspace sees nothing of ours.
    ours = make_campaign(workspace=segment.workspace, segment=segment)
    assert outsider.get(url(ours)).status_code == 404


def test_connectors_keep_their_secret_and_need_an_admin(client_for, marketer):
    admin = client_for("admin")
    hook = {"channel": "email", "kind": "webhook", "url": "https://esp.example.com/hook", "secret": "s" * 20}
    assert marketer.post("/api/workspaces/maison/connectors/", hook, format="json").status_code == 403
    r = admin.post("/api/workspaces/maison/connectors/", hook, format="json")
    assert r.status_code == 201 and "secret" not in r.json()
    assert Connector.objects.get().secret == "s" * 20
    r = admin.post("/api/workspaces/maison/connectors/", hook, format="json")
    assert r.status_code == 409 and r.json()["channel"][0]["code"] == "unique"
    r = admin.post("/api/workspaces/maison/connectors/", {**hook, "channel": "sms", "secret": "short"}, format="json")
    assert r.status_code == 400 and "secret" in r.json()


def test_frequency_caps_through_the_api(marketer, viewer):
    caps = "/api/workspaces/maison/frequency-caps/"
    cap = {"channel": "email", "max_touches": 2, "window": "P7D"}
    assert viewer.post(caps, cap, format="json").status_code == 403
    created = marketer.post(caps, cap, format="json")
    assert (created.status_code, created.json()["window"]) == (201, "P7D")
    assert marketer.post(caps, cap, format="json").status_code == 409
    assert marketer.post(caps, {**cap, "max_touches": 0}, format="json").status_code == 400
    too_short = marketer.post(caps, {**cap, "channel": "sms", "window": "PT30S"}, format="json")
    assert too_short.json()["window"] == [{"message": "At least PT1M.", "code": "min_value"}]
    # Found by the schema fuzzer: no channel means every channel (it was a 500).
    every = {"max_touches": 5, "window": "1 00:00:00"}
    assert marketer.post(caps, every, format="json").json()["channel"] == ""
    assert marketer.post(caps, every, format="json").status_code == 409


def test_the_list_costs_the_same_queries_for_one_campaign_or_many(marketer, workspace, segment):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from campaigns.services import spend_record

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert marketer.get(BASE).status_code == 200
        return len(captured)

    first = make_campaign(
        workspace=workspace, segment=segment, budget_total="100.00", budget_daily="10.00", pacing="asap"
    )
    Campaign.objects.filter(pk=first.pk).update(status="active")
    spend_record(campaign=first, amount="4.00", idempotency_key="k")
    queries()  # the token and the membership are then cached (accounts.access_cache)
    one = queries()
    for _ in range(4):
        make_campaign(workspace=workspace, segment=segment, budget_total="50.00")
    assert queries() == one
    listed = {c["id"]: c for c in marketer.get(BASE).json()["results"]}
    assert listed[first.pk]["spend_allowed_today"] == "6.00"  # today's spend read from the annotation


def test_a_campaign_with_more_targets_than_the_documented_cap_is_refused_quickly(marketer, segment):
    spec = body(segment)
    one = {"segment": segment.pk, "variant": "A", "subject_template": "Hello"}
    spec["targets"] = [one] * 101
    r = marketer.post(BASE, spec, format="json")
    assert r.status_code == 400
    assert r.json()["targets"] == {
        "non_field_errors": [{"message": "Ensure this field has no more than 100 elements.", "code": "max_length"}]
    }
    assert not Campaign.objects.exists()
    spec["targets"] = [one] * 100
    assert marketer.post(BASE, spec, format="json").status_code == 201


def test_a_daily_budget_above_the_total_is_refused_by_the_database_too(marketer, segment, workspace):
    r = marketer.post(BASE, body(segment, budget_total="100.00", budget_daily="300.00"), format="json")
    assert r.status_code == 400 and set(r.json()) == {"budget_daily"}, r.json()
    campaign = make_campaign(workspace=workspace, segment=segment)
    Campaign.objects.filter(pk=campaign.pk).update(budget_total=Decimal("100.00"), budget_daily=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(budget_daily=Decimal("300.00"))
