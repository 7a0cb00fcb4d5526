"""The performance dashboards in headless Chromium: the charts and tables carry the campaign's data."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from campaigns.models import LedgerEntry
from optimisation.models import Rule, RuleEvaluation
from tests.browser.helpers import ARTIFACTS, log_in, member
from tests.factories import make_workspace
from tests.reporting.measured import measured_campaign

pytestmark = pytest.mark.browser


def test_the_campaign_dashboard_charts_spend_budget_pacing_and_kpis(page, transactional_db):
    workspace = make_workspace(slug="maison")
    campaign = measured_campaign(workspace)
    log_in(page, member(workspace, Role.MARKETER))
    page.goto(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    page.locator("#cible-performance-link").click()
    page.get_by_role("link", name="reported by the platforms").click()

    cards = page.locator("#cible-totals")
    expect(cards.locator("[data-kpi=spend]")).to_contain_text("1410.00")
    expect(cards.locator("[data-kpi=reach]")).to_contain_text("3")
    chart = page.locator("svg[data-chart=spend-vs-budget]")
    expect(chart).to_be_visible()
    spend_line = chart.locator("polyline[data-series='Spend to date']")
    values = spend_line.get_attribute("data-values").split(",")
    assert values[-4:] == ["420", "890", "1410", "1410"]  # three days of figures, then today
    budget = chart.locator("polyline[data-series=Budget]").get_attribute("data-values").split(",")
    assert set(budget) == {"3000"}
    pacing = chart.locator("polyline[data-series='Even pacing']").get_attribute("data-values").split(",")
    assert Decimal(pacing[0]) < Decimal(pacing[-1]) < Decimal(3000)
    box = spend_line.bounding_box()
    assert box and box["width"] > 100  # drawn, not just present

    segments = page.locator("table[data-table=segment]")
    expect(segments.locator("tr[data-row='Fidèles']")).to_contain_text("1350.00")
    expect(segments.locator("tr[data-row='Nouveaux']")).to_contain_text("60.00")
    roas = page.locator("svg[data-chart=segment-roas] g.cible-bar")
    expect(roas).to_have_count(2)
    assert roas.nth(0).get_attribute("data-value") == "3.8889"
    expect(page.locator("table[data-table=channel] tr[data-row=email]")).to_contain_text("0.010000")

    page.fill("input[name=reason]", "Weekly review")
    page.locator("#cible-apply-reallocation").click()
    expect(page.locator("ul.messagelist")).to_contain_text("Budget shares moved for 2 target(s).")
    expect(page.locator("#cible-reallocation .cible-new-share").first).to_contain_text("72.17 %")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-campaign-performance.png"), full_page=True)
    assert LedgerEntry.objects.filter(campaign=campaign, kind="budget_share").count() == 2


def test_the_workspace_dashboard_and_a_rule_run_from_the_admin(page, transactional_db, eager_tasks):
    workspace = make_workspace(slug="maison")
    campaign = measured_campaign(workspace)
    log_in(page, member(workspace, Role.MARKETER))
    page.goto("/admin/reporting/performancedashboard/")
    expect(page.locator('#cible-campaigns tr[data-row="Soldes d\'hiver"]')).to_contain_text("47 %")
    bars = page.locator("svg[data-chart=budget-used] g.cible-bar")
    expect(bars).to_have_count(1)
    assert bars.first.get_attribute("data-value") == "47"
    trend = page.locator("svg[data-chart=workspace-trend] polyline[data-series=Spend]")
    assert "420" in trend.get_attribute("data-values").split(",")
    expect(page.locator("table[data-table=channel] tr[data-row=display]")).to_contain_text("1350.00")
    page.locator("#cible-report").click()
    expect(page.locator("ul.messagelist")).to_contain_text("The report is being generated.")
    page.reload()
    expect(page.locator("#cible-report-jobs")).to_contain_text("Done")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-performance-dashboard.png"), full_page=True)

    page.goto("/admin/optimisation/rule/add/")
    page.select_option("#id_workspace", str(workspace.pk))
    page.select_option("#id_campaign", str(campaign.pk))
    page.fill("#id_name", "Pause when CTR is low")
    # The conditions as JSON, under "advanced" (the rows editor writes the same).
    page.locator(".field-conditions details.cible-advanced").evaluate("d => { d.open = true; }")
    page.fill("#id_conditions", '[{"kpi": "ctr", "days": 7, "operator": "lt", "threshold": "0.05"}]')
    page.select_option("#id_basis", "reported")
    page.fill("#id_min_impressions", "1000")
    page.select_option("#id_action", "pause")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".cible-rule-preview")).to_contain_text("would pause")
    page.locator("#cible-run-rule").click()
    expect(page.locator("ul.messagelist")).to_contain_text("acted on 1")
    expect(page.locator("#cible-rule-history")).to_contain_text("paused")
    rule = Rule.objects.get()
    assert RuleEvaluation.objects.get(rule=rule).outcome == "acted"
    campaign.refresh_from_db()
    assert campaign.status == "paused"
