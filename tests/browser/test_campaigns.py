"""The campaign admin in headless Chromium: activate, pause with a reason, adjust the budget, cancel."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from campaigns.models import Campaign, LedgerEntry, Transition
from tests.browser.helpers import ARTIFACTS, log_in, member
from tests.factories import make_campaign, make_profile, make_segment, make_workspace

pytestmark = pytest.mark.browser


def test_a_marketer_runs_a_campaign_from_the_admin(page, transactional_db, eager_tasks):
    workspace = make_workspace(slug="maison")
    make_profile(workspace=workspace, country="FR")
    campaign = make_campaign(
        workspace=workspace, segment=make_segment(workspace=workspace), budget_total="500.00", name="Printemps"
    )
    log_in(page, member(workspace, Role.MARKETER))
    page.goto("/admin/campaigns/campaign/?status__exact=draft")
    expect(page.locator("#result_list")).to_contain_text("Printemps")
    expect(page.locator("#result_list")).to_contain_text("500.00 EUR")
    page.get_by_role("link", name="Printemps").click()

    page.get_by_role("button", name="Activate").click()
    expect(page.locator("ul.messagelist")).to_contain_text("the campaign is active")
    expect(page.locator(".field-status")).to_contain_text("Active")

    page.fill("input[name=action-reason]", "CPA above target")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("ul.messagelist")).to_contain_text("Paused.")

    page.fill("input[name=budget-total]", "800.00")
    page.get_by_role("button", name="Adjust the budget").click()
    expect(page.locator("ul.messagelist .error")).to_contain_text("Say why the budget changes.")
    page.fill("input[name=budget-total]", "800.00")
    page.fill("input[name=action-reason]", "Good ROAS on Lyon")
    page.get_by_role("button", name="Adjust the budget").click()
    expect(page.locator("#cible-spend")).to_contain_text("of 800.00 EUR")

    page.get_by_role("button", name="Resume").click()
    expect(page.locator(".field-status")).to_contain_text("Active")
    page.fill("input[name=action-reason]", "Stock-out")
    page.get_by_role("button", name="Cancel the campaign").click()
    expect(page.locator(".field-status")).to_contain_text("Cancelled")
    expect(page.locator("#cible-controls")).to_have_count(0)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-campaign.png"), full_page=True)

    campaign.refresh_from_db()
    assert (campaign.status, campaign.budget_total) == ("cancelled", Decimal("800.00"))
    assert LedgerEntry.objects.get(kind="budget_total").reason == "Good ROAS on Lyon"
    assert list(Transition.objects.filter(campaign=campaign).order_by("id").values_list("to_status", flat=True)) == [
        "scheduled",
        "active",
        "paused",
        "active",
        "cancelled",
    ]
    assert Campaign.objects.count() == 1


def test_a_campaigns_times_read_the_same_in_the_list_and_on_its_page(page, transactional_db):
    """The list and the page agree, in the workspace's zone, and the header names it."""
    from datetime import UTC, datetime, timedelta

    from accounts.models import Workspace

    workspace = make_workspace(slug="nyc")
    Workspace.objects.filter(pk=workspace.pk).update(time_zone="America/New_York")
    start = datetime(2026, 7, 1, 14, 48, tzinfo=UTC)  # 10:48 in New York
    make_campaign(workspace=workspace, name="Soldes", starts_at=start, ends_at=start + timedelta(days=30))
    log_in(page, member(workspace, Role.MARKETER))
    page.goto("/admin/campaigns/campaign/")
    expect(page.locator("#cible-time-zone")).to_have_text("Times in America/New_York")
    row = page.locator("#result_list tbody tr", has_text="Soldes")
    expect(row.locator("td.field-starts_at")).to_contain_text("10:48")
    row.get_by_role("link", name="Soldes").click()
    expect(page.locator("#cible-time-zone")).to_have_text("Times in America/New_York")
    expect(page.locator("#id_starts_at_0")).to_have_value("2026-07-01")
    expect(page.locator("#id_starts_at_1")).to_have_value("10:48:00")
