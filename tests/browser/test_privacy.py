"""The privacy officer's admin flow in headless Chromium: record requests, answer an access request,
carry out an erasure, and see it in the audit log."""

import json

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from customers.models import Profile
from customers.services import profile_create
from privacy.models import AuditEntry, DataSubjectRequest, RetentionPolicy
from tests.browser.helpers import ARTIFACTS, log_in, member
from tests.factories import make_consent, make_event, make_workspace

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def add_request(page, workspace, kind: str, profile: Profile, received: tuple[str, str] | None = None):
    page.goto("/admin/privacy/datasubjectrequest/add/")
    page.select_option("#id_workspace", str(workspace.pk))
    page.select_option("#id_kind", kind)
    page.fill("#id_profile", str(profile.pk))
    if received:
        page.fill("#id_received_at_0", received[0])
        page.fill("#id_received_at_1", received[1])
    page.click("input[name=_continue]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")


def test_the_privacy_officer_answers_access_and_erasure_requests_in_the_admin(page, transactional_db):
    workspace = make_workspace(slug="maison")
    claire = profile_create(workspace=workspace, external_id="CRM-9", email="claire@example.com", first_name="Claire")
    make_consent(profile=claire)
    make_event(profile=claire, type="product_view", properties={"name": "Trail shoes"})
    officer = member(workspace, Role.PRIVACY_OFFICER)
    log_in(page, officer)

    # An access request received on 31 January is due on the last day of February.
    add_request(page, workspace, "access", claire, received=("2026-01-31", "10:00:00"))
    expect(page.locator("div.field-due_on")).to_contain_text("Feb. 28, 2026")
    page.fill("input[name=action-reason]", "Identity check by post")
    page.get_by_role("button", name="Extend by two months").click()
    expect(page.locator("div.field-due_on")).to_contain_text("April 28, 2026")
    page.get_by_role("button", name="Carry out the access and complete").click()
    expect(page.locator("ul.messagelist")).to_contain_text("The request was completed.")
    expect(page.locator("div.field-status")).to_contain_text("Completed")
    with page.expect_download() as download:
        page.locator("#cible-download").click()
    document = json.loads(open(download.value.path()).read())
    assert document["profile"]["email"] == "claire@example.com"
    assert [e["type"] for e in document["events"]] == ["product_view"]

    # An erasure, carried out from its page.
    add_request(page, workspace, "erasure", claire)
    expect(page.locator("div.field-status")).to_contain_text("Received")
    page.get_by_role("button", name="Start handling").click()
    expect(page.locator("div.field-status")).to_contain_text("In progress")
    page.get_by_role("button", name="Carry out the erasure and complete").click()
    expect(page.locator("div.field-status")).to_contain_text("Completed")
    expect(page.locator("#cible-outcome")).to_contain_text("consents")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-privacy-erasure.png"), full_page=True)
    claire.refresh_from_db()
    assert (claire.email, claire.first_name, claire.erased_at is not None) == ("", "", True)
    erasure = DataSubjectRequest.objects.get(kind="erasure")
    assert erasure.status == "completed" and erasure.handled_by == officer

    # The list shows both answered; the audit log shows who did what.
    page.goto("/admin/privacy/datasubjectrequest/")
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    page.goto("/admin/privacy/auditentry/")
    expect(page.locator("#result_list")).to_contain_text("Completed a data-subject request")
    expect(page.locator("#result_list")).to_contain_text("Downloaded a person's data")
    assert AuditEntry.objects.filter(actor=officer, action="request_completed").count() == 2
    # The retention policy page carries the records of processing.
    page.goto("/admin/privacy/retentionpolicy/add/")
    page.select_option("#id_workspace", str(workspace.pk))
    page.fill("#id_events_months", "13")
    page.click("input[name=_continue]")
    expect(page.locator("#cible-processing")).to_contain_text("Events are deleted after 13 months.")
    assert RetentionPolicy.objects.get(workspace=workspace).events_months == 13
