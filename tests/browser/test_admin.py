"""The admin as workspace members use it, driven in headless Chromium (Debian's package).

bin/test sets CIBLE_CHROMIUM to the browser; Playwright's sync API drives it against
pytest-django's live server.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Role
from customers.models import ImportJob, Profile
from tests.browser.helpers import ARTIFACTS, log_in, member
from tests.factories import make_consent, make_order, make_profile, make_workspace

pytestmark = pytest.mark.browser


@pytest.fixture
def workspaces(transactional_db):
    """Workspace A with profiles, orders and consent; workspace B with profiles of its own."""
    a = make_workspace(slug="maison")
    b = make_workspace(slug="rival")
    now = timezone.now()
    camille = make_profile(
        workspace=a, external_id="A-001", first_name="Camille", last_name="Martin", email="camille@example.com"
    )
    make_profile(workspace=a, external_id="A-002", first_name="Louis", last_name="Bernard")
    make_profile(workspace=a, external_id="A-003", first_name="Chloé", last_name="Petit")
    make_profile(workspace=b, external_id="B-001", first_name="Rival", last_name="Secret")
    make_profile(workspace=b, external_id="B-002", first_name="Other", last_name="Hidden")
    make_order(profile=camille, amount="49.90", ordered_at=now - timedelta(days=3))
    make_order(profile=camille, amount="12.00", ordered_at=now - timedelta(days=1))
    make_consent(profile=camille, purpose="direct_marketing", channel="email", status="granted")
    make_consent(profile=camille, purpose="profiling", channel="web", status="denied")
    return a, b, camille


def test_a_marketer_sees_the_profiles_of_their_workspace_only_and_a_profile_360(page, workspaces):
    a, b, camille = workspaces
    log_in(page, member(a, Role.MARKETER))

    page.get_by_role("link", name="Customers and prospects", exact=True).click()
    expect(page).to_have_url(re.compile(r"/admin/customers/profile/$"))
    results = page.locator("#result_list")
    for external_id in ("A-001", "A-002", "A-003"):
        expect(results).to_contain_text(external_id)
    for hidden in ("B-001", "B-002", "Rival", "Secret"):
        expect(results).not_to_contain_text(hidden)
    expect(page.locator("#result_list tbody tr")).to_have_count(3)

    page.locator("#result_list").get_by_role("link", name="A-001").click()
    expect(page).to_have_url(re.compile(rf"/admin/customers/profile/{camille.pk}/change/$"))
    consent = page.locator(".field-consents_in_force")
    expect(consent).to_contain_text("Consent in force")
    expect(consent).to_contain_text("Direct marketing / E-mail: granted")
    expect(consent).to_contain_text("Profiling / Web site: denied")
    orders = page.locator("#orders-group")
    expect(orders).to_contain_text("Orders")
    for order in camille.orders.all():
        expect(orders).to_contain_text(order.order_id)
    expect(orders).to_contain_text("49.90")
    expect(page.locator(".field-summary")).to_contain_text("2 orders")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-profile.png"), full_page=True)

    # Another workspace's profile is not reachable by its URL either.
    other = Profile.objects.get(external_id="B-001")
    page.goto(f"/admin/customers/profile/{other.pk}/change/")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("ul.messagelist")).to_contain_text(f"Profile with ID “{other.pk}” doesn’t exist")
    expect(page.locator("#content")).not_to_contain_text("B-001")


def test_a_marketer_imports_a_csv_of_profiles_and_sees_the_rejected_row(page, workspaces, eager_tasks, tmp_path):
    # With REDIS_URL set tasks go to the broker; here the import runs in the live server's thread.
    a, b, _ = workspaces
    log_in(page, member(a, Role.MARKETER))
    upload = tmp_path / "prospects.csv"
    upload.write_text(
        "external_id;first_name;email;birth_date\n"
        "CSV-1;Inès;ines@example.com;1991-05-17\n"
        "CSV-2;Hugo;hugo@example.com;not-a-date\n"
        "CSV-3;Léa;lea@example.com;1985-11-02\n",
        encoding="utf-8",
    )

    page.get_by_role("link", name="Imports", exact=True).click()
    page.get_by_role("link", name=re.compile(r"Add import job", re.IGNORECASE)).click()
    expect(page).to_have_url(re.compile(r"/admin/customers/importjob/add/$"))
    # Only the workspaces the marketer may write in are offered.
    expect(page.locator("#id_workspace option")).to_have_text(["---------", a.name])
    page.select_option("#id_workspace", label=a.name)
    page.select_option("#id_kind", value="profiles")
    page.set_input_files("#id_upload", str(upload))
    page.locator("input[name=_save]").click()

    # The admin goes straight to the job's page, with its status and rejected rows.
    expect(page.locator("ul.messagelist")).to_contain_text("prospects.csv")
    expect(page).to_have_url(re.compile(r"/admin/customers/importjob/\d+/change/$"))
    expect(page.locator(".field-filename")).to_contain_text("prospects.csv")
    expect(page.locator(".field-status_shown")).to_contain_text("Succeeded")
    expect(page.locator(".field-rejected")).to_contain_text("1")
    report = page.locator(".field-error_report")
    expect(report).to_contain_text("row 3")
    expect(report).to_contain_text("birth_date")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-import-job.png"), full_page=True)

    job = ImportJob.objects.get(workspace=a)
    assert (job.status, job.rows, job.created, job.rejected) == (ImportJob.Status.SUCCEEDED, 3, 2, 1)
    assert [(e["row"], e["field"]) for e in job.errors] == [(3, "birth_date")]
    imported = {p.external_id: p for p in Profile.objects.filter(workspace=a, external_id__startswith="CSV-")}
    assert sorted(imported) == ["CSV-1", "CSV-3"]
    assert (imported["CSV-1"].first_name, imported["CSV-1"].email, str(imported["CSV-1"].birth_date)) == (
        "Inès",
        "ines@example.com",
        "1991-05-17",
    )
    assert not Profile.objects.filter(workspace=b, external_id__startswith="CSV-").exists()


def test_a_viewer_has_no_add_button_for_profiles(page, workspaces):
    a, _, _ = workspaces
    log_in(page, member(a, Role.VIEWER))

    profiles_row = page.locator("tr.model-profile")
    expect(profiles_row).to_be_visible()
    expect(profiles_row.locator("a.addlink")).to_have_count(0)

    profiles_row.get_by_role("link", name="Customers and prospects", exact=True).click()
    expect(page).to_have_url(re.compile(r"/admin/customers/profile/$"))
    expect(page.locator("#result_list")).to_contain_text("A-001")
    expect(page.locator("a.addlink")).to_have_count(0)
    expect(page.get_by_role("link", name=re.compile(r"Add (profile|customer)", re.IGNORECASE))).to_have_count(0)

    # And the add form itself is refused.
    response = page.goto("/admin/customers/profile/add/")
    assert response is not None and response.status == 403
