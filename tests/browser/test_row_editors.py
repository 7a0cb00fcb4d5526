"""Rule conditions and a triggered target's event properties, built by clicking (no JSON)."""

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from campaigns.models import Target
from optimisation.models import Rule
from tests.browser.helpers import log_in, member
from tests.factories import make_campaign, make_workspace

pytestmark = pytest.mark.browser


def test_a_marketer_writes_a_rule_and_a_triggers_properties_by_clicking(page, transactional_db):
    workspace = make_workspace(slug="maison")
    campaign = make_campaign(workspace=workspace, name="Relance", holdout_percent=10)
    log_in(page, member(workspace, Role.MARKETER))

    page.goto("/admin/optimisation/rule/add/")
    page.select_option("#id_workspace", label=workspace.name)
    page.select_option("#id_campaign", label="Relance")
    page.fill("#id_name", "Stop when it causes nothing")
    page.select_option("#id_action", "pause")
    editor = page.locator(".field-conditions .cible-rows-editor")
    editor.locator(".cible-add-row").click()
    row = editor.locator("tbody tr").first
    row.locator("select[aria-label=Figure]").select_option(label="Uplift against the control group")
    row.locator("select[aria-label=Condition]").select_option(label="is below")
    row.locator("input[aria-label=Threshold]").fill("0")
    row.locator("input[aria-label='Over the last (days)']").fill("14")
    page.locator("input[name=_save]").click()
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    rule = Rule.objects.get(workspace=workspace)
    assert rule.conditions == [{"kpi": "uplift", "days": 14, "operator": "lt", "threshold": "0"}]

    page.goto(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    page.locator(".inline-group .add-row a").click()
    page.fill("#id_targets-0-trigger_event", "cart_abandoned")
    page.fill("#id_targets-0-trigger_delay", "PT2H")
    page.fill("#id_targets-0-variant", "Panier")
    page.fill("#id_targets-0-subject_template", "Votre panier")
    properties = page.locator("#targets-0 .field-trigger_properties .cible-rows-editor")
    properties.locator(".cible-add-row").click()
    properties.locator("input[aria-label=Property]").fill("category")
    properties.locator("input[aria-label=Value]").fill("shoes")
    page.locator("input[name=_continue]").click()
    expect(page.locator("ul.messagelist")).to_contain_text("was changed successfully")
    target = Target.objects.get(campaign=campaign)
    assert (target.trigger_event, target.trigger_properties) == ("cart_abandoned", {"category": "shoes"})
