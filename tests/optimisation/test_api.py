"""The optimisation API: automated rules (preview, run, history, refusals) and reallocation."""

from decimal import Decimal

import pytest

from campaigns.models import Campaign
from optimisation.models import Rule, RuleEvaluation
from tests.reporting.measured import measured_targets, rule_body, two_target_campaign

pytestmark = pytest.mark.django_db
BASE = "/api/workspaces/maison"


@pytest.fixture
def campaign(workspace):
    return two_target_campaign(workspace)


@pytest.fixture
def measured(workspace, campaign):
    return measured_targets(workspace, campaign)


def test_rules_preview_run_and_history(marketer, measured, workspace):
    campaign, a, b = measured
    Campaign.objects.filter(pk=campaign.pk).update(budget_total=Decimal("2000.00"))
    r = marketer.post(f"{BASE}/rules/", rule_body(campaign), format="json")
    assert r.status_code == 201, r.json()
    rule_id = r.json()["id"]
    preview = marketer.post(f"{BASE}/rules/{rule_id}/preview/").json()
    assert preview[0]["would_act"] and preview[0]["plan"] == "total budget 2000.00 -> 1600.00 EUR"
    assert preview[0]["conditions"][0]["value"] == "3.5000"
    assert not RuleEvaluation.objects.exists()
    ran = marketer.post(f"{BASE}/rules/{rule_id}/run/").json()
    assert ran[0]["outcome"] == "acted" and ran[0]["source"] == "manual"
    assert Campaign.objects.get(pk=campaign.pk).budget_total == Decimal("1600.00")
    history = marketer.get(f"{BASE}/rules/{rule_id}/evaluations/").json()
    assert history["count"] == 1 and history["results"][0]["seen"]["conditions"][0]["holds"] is True
    assert marketer.get(f"{BASE}/campaigns/{campaign.pk}/rule-evaluations/").json()["count"] == 1


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"conditions": [{"kpi": "roas", "operator": "lt"}]}, "conditions[0].threshold"),
        ({"action": "budget_percent", "change_percent": None}, "change_percent"),
        ({"action": "notify"}, "notify_url"),
        ({"notify_url": "https://hooks.example.com/x"}, "notify_secret"),
        ({"budget_min": "500", "budget_max": "100"}, "budget_max"),
        ({"schedule": "weekly"}, "schedule"),
        ({"action": "explode"}, "action"),
    ],
)
def test_bad_rules_are_a_400_naming_the_field(marketer, campaign, fields, field):
    r = marketer.post(f"{BASE}/rules/", rule_body(campaign, **fields), format="json")
    assert r.status_code == 400 and field in r.json(), r.json()
    assert not Rule.objects.exists()


def test_reallocation_recommend_and_apply(marketer, viewer, workspace, measured):
    campaign, a, b = measured
    url = f"{BASE}/campaigns/{campaign.pk}/reallocation/?basis=reported&learning_conversions=0&min_share=10"
    plan = viewer.get(url).json()
    rows = {row["target"]: row for row in plan["targets"]}
    # b spent nothing: learning, keeps 50 %; a alone keeps its 50 %
    assert rows[b.pk]["learning"] is True and plan["moves"] == 0
    assert viewer.post(f"{BASE}/campaigns/{campaign.pk}/reallocate/", {}, format="json").status_code == 403
    r = marketer.post(
        f"{BASE}/campaigns/{campaign.pk}/reallocate/", {"basis": "reported", "reason": "test"}, format="json"
    )
    assert r.status_code == 200 and r.json()["moves"] == 0
    assert marketer.get(f"{BASE}/campaigns/{campaign.pk}/reallocation/?days=0").status_code == 400
