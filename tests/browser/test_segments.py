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

    definition = page.locator("#id_definition")
    definition.fill(json.dumps({"field": "city", "op": "eq", "value": 42}))
    expect(page.locator("#cible-preview-result .errorlist")).to_contain_text("definition.value: expected a string.")

    definition.fill(json.dumps({"field": "city", "op": "eq", "value": "Lyon"}))
    expect(page.locator("#cible-preview-count")).to_have_text(re.compile(r"^3 people \(75\.0 % of 4\)"))
    expect(page.locator("#cible-preview-result")).to_contain_text("Lyonnais0")
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
    page.locator("#id_definition").fill(json.dumps({"all": [{"event": "teleport"}]}))
    page.locator("input[name=_save]").click()
    expect(page.locator(".field-definition .errorlist")).to_contain_text(
        "definition.all[0].event: unknown event type 'teleport'."
    )
    assert not Segment.objects.exists()
