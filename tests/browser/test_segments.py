"""The segment editor in headless Chromium: inline errors, the live count, then saving."""

import json
import re

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from segments.models import Segment
from tests.browser.helpers import ARTIFACTS, log_in, member
from tests.factories import make_profile, make_workspace

pytestmark = pytest.mark.browser


def test_a_marketer_writes_rules_sees_the_live_count_and_saves(page, transactional_db):
    workspace = make_workspace(slug="maison")
    for n in range(3):
        make_profile(workspace=workspace, external_id=f"L{n}", first_name=f"Lyonnais{n}", city="Lyon")
    make_profile(workspace=workspace, external_id="P0", city="Paris")
    log_in(page, member(workspace, Role.MARKETER))
    page.goto("/admin/segments/segment/add/")
    page.select_option("#id_workspace", label=workspace.name)
    page.fill("#id_name", "Lyonnais")

    # The JSON stays available under "advanced"; what is typed there redraws the builder (once the
    # builder has drawn: typed before, it is read when the builder draws).
    expect(page.locator(".cible-group").first).to_be_visible()
    page.locator("details.cible-advanced").first.evaluate("d => { d.open = true; }")
    definition = page.locator("#id_definition")
    definition.fill(json.dumps({"field": "city", "op": "eq", "value": 42}))
    expect(page.locator(".cible-builder-status .errorlist")).to_contain_text("definition.value: expected a string.")

    definition.fill(json.dumps({"field": "city", "op": "eq", "value": "Lyon"}))
    expect(page.locator("#cible-preview-count")).to_have_text(re.compile(r"^3 people"))
    expect(page.locator(".cible-builder-status")).to_contain_text("75 % of 4")
    expect(page.locator(".cible-builder-status")).to_contain_text("Lyonnais0")
    expect(page.locator(".cible-sentence")).to_have_text("City is “Lyon”")
    expect(page.locator(".cible-condition select.cible-criterion")).to_have_value("field:city")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-segment-editor.png"), full_page=True)

    page.locator("input[name=_save]").click()
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    segment = Segment.objects.get(workspace=workspace)
    assert segment.definition == {"field": "city", "op": "eq", "value": "Lyon"}


def test_saving_bad_rules_shows_the_error_on_the_field(page, transactional_db):
    workspace = make_workspace(slug="maison")
    log_in(page, member(workspace, Role.MARKETER))
    page.goto("/admin/segments/segment/add/")
    page.select_option("#id_workspace", label=workspace.name)
    page.fill("#id_name", "Broken")
    page.locator("details.cible-advanced").first.evaluate("d => { d.open = true; }")
    page.locator("#id_definition").fill(json.dumps({"all": [{"event": "teleport"}]}))
    page.locator("input[name=_save]").click()
    expect(page.locator(".field-definition .errorlist")).to_contain_text(
        'definition.all[0].event: unknown event type "teleport".'
    )
    assert not Segment.objects.exists()


@pytest.mark.slow
def test_refresh_index_table_and_export_run_on_the_worker_with_their_progress(page, celery_worker_process):
    """The segment page's buttons, each run by the real worker, the page following their progress."""
    from datetime import timedelta

    from django.utils import timezone

    from segments.services import segment_create
    from tests.factories import make_consent

    workspace = make_workspace(slug="maison")
    past = timezone.now() - timedelta(days=3)
    for n in range(4):
        person = make_profile(workspace=workspace, external_id=f"L{n}", city="Lyon", gender="female")
        if n % 2 == 0:
            make_consent(profile=person, purpose="ad_targeting", channel="social", recorded_at=past)
    for n in range(4):
        make_profile(workspace=workspace, external_id=f"P{n}", city="Paris", gender="male")
    segment = segment_create(
        workspace=workspace, name="Lyonnaises", definition={"field": "city", "op": "eq", "value": "Lyon"}
    )
    log_in(page, member(workspace, Role.MARKETER))
    page.goto(f"/admin/segments/segment/{segment.pk}/change/")
    expect(page.locator("#cible-index")).to_contain_text("Compute the audience first")

    page.get_by_role("button", name="Refresh now").click()
    expect(page.locator("ul.messagelist")).to_contain_text("Audience refresh: queued.")
    # The page polls the status, then reloads once the worker is done.
    expect(page.locator(".cible-status[data-job=audience]")).to_have_text("Ready", timeout=30_000)
    expect(page.locator(".field-audience_summary")).to_contain_text("4 members")

    page.fill("#id_analysis-min_count", "1")
    page.fill("#id_analysis-min_abs_z", "0")
    page.get_by_role("button", name="Compute the index table").click()
    expect(page.locator("table.cible-index tr.cible-over").first).to_contain_text("Female", timeout=30_000)
    expect(page.locator("#cible-suggestion")).to_contain_text("+ Gender: Female")

    page.select_option("#id_export-purpose", "ad_targeting")
    page.select_option("#id_export-channel", "social")
    page.get_by_role("button", name="Export the audience").click()
    expect(page.locator("ul.messagelist")).to_contain_text("Export queued.")
    link = page.locator("table.cible-exports a", has_text="Download")
    expect(link).to_be_visible(timeout=30_000)
    expect(page.locator("table.cible-exports")).to_contain_text("2 of 4")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-segment-panels.png"), full_page=True)
    with page.expect_download() as download:
        link.click()
    lines = open(download.value.path()).read().splitlines()
    assert lines[0] == "external_id,email_sha256,phone_sha256"
    assert sorted(line.split(",")[0] for line in lines[1:]) == ["L0", "L2"]
