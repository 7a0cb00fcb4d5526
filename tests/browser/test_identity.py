"""A person's journey and identity graph in the admin, in headless Chromium: one timeline across
channels (filtered by channel), the merges that formed the profile, and an unmerge by clicking."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Role
from customers.ingestion import INGESTERS
from customers.models import Profile, ProfileMerge
from tests.browser.helpers import log_in, member
from tests.customers.test_timeline import journey
from tests.factories import make_workspace

pytestmark = pytest.mark.browser


def test_a_manager_reads_the_journey_and_splits_a_wrong_merge_back(page, transactional_db):
    workspace = make_workspace(slug="maison")
    person = journey(workspace)
    at = timezone.now().isoformat()
    browse = {"type": "product_view", "channel": "web", "occurred_at": at}
    INGESTERS["events"](
        workspace=workspace,
        items=[{"idempotency_key": "a", **browse, "identities": [{"type": "cookie", "value": "ck-shared"}]}],
    )
    anonymous = Profile.objects.get(anonymous=True)
    INGESTERS["events"](
        workspace=workspace,
        items=[
            {
                "idempotency_key": "b",
                **browse,
                "external_id": "C1",
                "identities": [{"type": "cookie", "value": "ck-shared"}],
            }
        ],
    )
    assert ProfileMerge.objects.filter(survivor=person, reason="rule").exists()

    log_in(page, member(workspace, Role.MANAGER))
    page.goto(f"/admin/customers/profile/{person.pk}/change/")
    journey_box = page.locator(".field-journey .cible-journey")
    expect(journey_box).to_contain_text("Order T-9")
    expect(journey_box).to_contain_text("Campaign Soldes")
    expect(journey_box).to_contain_text("Customer-service contact")
    web_rows = journey_box.locator("tbody tr[data-channel=web]")
    expect(web_rows.first).to_be_visible()
    journey_box.get_by_label("Web site").uncheck()
    expect(web_rows.first).to_be_hidden()
    expect(journey_box.locator("tbody tr[data-channel=store]").first).to_be_visible()

    graph = page.locator(".field-identity_graph .cible-identity")
    expect(graph).to_contain_text("ck-shared")
    expect(graph).to_contain_text("Cookie id match rule")
    graph.get_by_role("button", name="Unmerge").click()
    expect(page.locator("ul.messagelist")).to_contain_text("was split back from this profile")
    restored = Profile.objects.get(pk=anonymous.pk)
    assert restored.anonymous and restored.events.count() == 1
    expect(page.locator(".field-identity_graph")).to_contain_text("Split back on")


def test_a_marketer_sees_no_unmerge_button(page, transactional_db):
    workspace = make_workspace(slug="maison")
    person = journey(workspace)
    log_in(page, member(workspace, Role.MARKETER))
    page.goto(f"/admin/customers/profile/{person.pk}/change/")
    expect(page.locator(".field-journey")).to_contain_text("Order T-9")
    expect(page.get_by_role("button", name="Unmerge")).to_have_count(0)
