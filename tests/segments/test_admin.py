import json

import pytest
from django.urls import reverse

from segments.models import Segment
from segments.services import segment_create
from tests.factories import make_profile, make_user

LYON = {"field": "city", "op": "eq", "value": "Lyon"}


@pytest.fixture
def marketer_browser(client, workspace):
    client.force_login(make_user(workspace=workspace, role="marketer"))
    return client


def form(workspace, definition, name="Lyon"):
    return {
        "workspace": workspace.pk,
        "name": name,
        "description": "",
        "kind": "dynamic",
        "definition": json.dumps(definition),
        "refresh_every": "",
    }


def test_the_editor_shows_rule_errors_by_path_on_the_form(marketer_browser, workspace):
    r = marketer_browser.post(
        reverse("admin:segments_segment_add"), form(workspace, {"all": [{"field": "age", "op": "gte", "value": "x"}]})
    )
    assert r.status_code == 200
    assert "definition.all[0].value: expected a number." in r.content.decode()
    assert not Segment.objects.exists()


def test_the_editor_saves_valid_rules_through_the_service(marketer_browser, workspace):
    r = marketer_browser.post(reverse("admin:segments_segment_add"), form(workspace, LYON))
    assert r.status_code == 302
    segment = Segment.objects.get()
    assert (segment.definition, segment.audience.status) == (LYON, "never")


def test_the_live_preview_counts_and_reports_errors(marketer_browser, workspace, other_workspace):
    make_profile(workspace=workspace, city="Lyon")
    make_profile(workspace=workspace, city="Paris")
    url = reverse("admin:segments_segment_preview")
    r = marketer_browser.post(url, {"workspace": workspace.pk, "definition": LYON}, content_type="application/json")
    assert (r.status_code, r.json()["count"], r.json()["base"]) == (200, 1, 2)
    r = marketer_browser.post(
        url, {"workspace": workspace.pk, "definition": {"field": "nope"}}, content_type="application/json"
    )
    assert r.status_code == 400 and r.json()["errors"]
    # Another workspace is refused, not counted.
    r = marketer_browser.post(
        url, {"workspace": other_workspace.pk, "definition": LYON}, content_type="application/json"
    )
    assert r.status_code == 400


def test_the_change_page_shows_the_audience_history(marketer_browser, workspace):
    from audiences.services import audience_compute

    make_profile(workspace=workspace, city="Lyon")
    segment = segment_create(workspace=workspace, name="Lyon", definition=LYON)
    audience_compute(segment_id=segment.pk)
    audience_compute(segment_id=segment.pk)
    page = marketer_browser.get(reverse("admin:segments_segment_change", args=[segment.pk])).content.decode()
    assert "cible-size-chart" in page and "Succeeded" in page and "cible-preview" in page


def test_another_workspaces_segment_is_not_reachable_in_the_admin(marketer_browser, other_workspace):
    theirs = segment_create(workspace=other_workspace, name="Theirs", definition=LYON)
    assert marketer_browser.get(reverse("admin:segments_segment_change", args=[theirs.pk])).status_code == 302
    assert "Theirs" not in marketer_browser.get(reverse("admin:segments_segment_changelist")).content.decode()
