"""Automated rules in the admin: made, refused naming the condition, previewed and run."""

import pytest
from django.urls import reverse

from optimisation.models import Rule, RuleEvaluation
from tests.factories import make_user
from tests.reporting.measured import measured_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, workspace):
    client.force_login(make_user(workspace=workspace, role="marketer"))
    return client


def rule_form(workspace, campaign, **fields):
    data = {
        "workspace": workspace.pk,
        "campaign": campaign.pk,
        "name": "Cut when ROAS < 4",
        "enabled": "on",
        "conditions": '[{"kpi": "roas", "days": 7, "operator": "lt", "threshold": "4"}]',
        "basis": "reported",
        "min_impressions": "1000",
        "min_spend": "0",
        "action": "budget_percent",
        "budget_field": "total",
        "change_percent": "-10",
        "reallocation_metric": "roas",
        "min_share": "10",
        "learning_conversions": "5",
        "schedule": "daily",
    }
    data.update(fields)
    return data


def test_a_rule_is_made_previewed_and_run_in_the_admin(staff, workspace):
    campaign = measured_campaign(workspace)
    bad = staff.post(
        reverse("admin:optimisation_rule_add"), rule_form(workspace, campaign, conditions='[{"kpi": "mood"}]')
    )
    assert bad.status_code == 200 and "conditions[0].kpi" in bad.content.decode()
    staff.post(reverse("admin:optimisation_rule_add"), rule_form(workspace, campaign))
    rule = Rule.objects.get()
    page = staff.get(reverse("admin:optimisation_rule_change", args=[rule.pk])).content.decode()
    assert "would total budget 3000.00 -&gt; 2700.00 EUR" in page
    done = staff.post(reverse("admin:optimisation_rule_run", args=[rule.pk]), follow=True).content.decode()
    assert "acted on 1" in done and 'id="cible-rule-history"' in done
    assert RuleEvaluation.objects.get().outcome == "acted"
