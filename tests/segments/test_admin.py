import json
import re

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
    assert "cible-size-chart" in page and "Succeeded" in page and "cible-builder" in page


def test_another_workspaces_segment_is_not_reachable_in_the_admin(marketer_browser, other_workspace):
    theirs = segment_create(workspace=other_workspace, name="Theirs", definition=LYON)
    assert marketer_browser.get(reverse("admin:segments_segment_change", args=[theirs.pk])).status_code == 302
    assert "Theirs" not in marketer_browser.get(reverse("admin:segments_segment_changelist")).content.decode()


# The segment page's panels: refresh, index table and its suggestion, exports.


@pytest.fixture
def lyon(workspace):
    from datetime import timedelta

    from django.utils import timezone

    from audiences.services import audience_compute
    from tests.factories import make_consent

    past = timezone.now() - timedelta(days=2)
    for n in range(3):
        person = make_profile(
            workspace=workspace, external_id=f"L{n}", city="Lyon", gender="female", email=f"l{n}@example.com"
        )
        if n < 2:
            make_consent(profile=person, purpose="ad_targeting", channel="social", recorded_at=past)
    for n in range(3):
        make_profile(workspace=workspace, external_id=f"P{n}", city="Paris", gender="male")
    segment = segment_create(workspace=workspace, name="Lyon", definition=LYON)
    audience_compute(segment_id=segment.pk)
    return segment


def change_page(client, segment) -> str:
    return client.get(reverse("admin:segments_segment_change", args=[segment.pk])).content.decode()


def post(client, name, segment, data, capture):
    with capture(execute=True):
        return client.post(reverse(f"admin:segments_segment_{name}", args=[segment.pk]), data, follow=True)


def test_refresh_button_queues_a_computation_and_status_shows_it(
    marketer_browser, workspace, lyon, django_capture_on_commit_callbacks
):
    make_profile(workspace=workspace, external_id="L9", city="Lyon")
    r = marketer_browser.post(reverse("admin:segments_segment_refresh", args=[lyon.pk]))
    assert r.status_code == 302
    status = marketer_browser.get(reverse("admin:segments_segment_status", args=[lyon.pk])).json()
    assert status["jobs"]["audience"] == "queued" and status["busy"] is True
    assert f'formaction="/admin/segments/segment/{lyon.pk}/refresh/"' in change_page(marketer_browser, lyon)


def test_the_index_table_is_computed_with_thresholds_and_shown(
    marketer_browser, lyon, eager_tasks, django_capture_on_commit_callbacks
):
    r = post(
        marketer_browser,
        "analyse",
        lyon,
        {"analysis-min_index": "150", "analysis-min_count": "2", "analysis-min_abs_z": "1"},
        django_capture_on_commit_callbacks,
    )
    assert "Index table queued." in r.content.decode()
    page = change_page(marketer_browser, lyon)
    # 3 of 3 members are women against 3 of 6 in the base: index 200, flagged at these thresholds.
    row = re.search(r'<tr class="cible-over"><td>Gender</td><td>Female</td><td>3</td>(.*?)</tr>', page)
    assert row, page
    assert "<td>100.0 %</td><td>50.0 %</td><td>200</td>" in row.group(0)
    assert "Size <strong>3</strong>" in page  # the suggested macro-segment (women) and its size


def test_bad_thresholds_are_reported_by_field(marketer_browser, lyon, django_capture_on_commit_callbacks):
    r = post(marketer_browser, "analyse", lyon, {"analysis-min_index": "-5"}, django_capture_on_commit_callbacks)
    page = r.content.decode()
    assert "Index table not queued. min_index: Ensure this value is greater than or equal to 0." in page
    assert "Index table not queued. min_count: This field is required." in page


def test_the_suggestion_becomes_a_draft_segment(
    marketer_browser, workspace, lyon, eager_tasks, django_capture_on_commit_callbacks
):
    data = {"analysis-min_index": "120", "analysis-min_count": "1", "analysis-min_abs_z": "0"}
    post(marketer_browser, "analyse", lyon, data, django_capture_on_commit_callbacks)
    r = post(marketer_browser, "suggestion_create", lyon, {}, django_capture_on_commit_callbacks)
    created = Segment.objects.get(workspace=workspace, name="Lyon — macro")
    assert "Created the draft segment Lyon — macro." in r.content.decode()
    assert {"field": "gender", "op": "eq", "value": "female"} in created.definition["any"]
    assert created.owner is not None and created.audience.status == "never"


def test_an_export_from_the_admin_is_consent_gated_logged_and_downloadable(
    marketer_browser, lyon, eager_tasks, django_capture_on_commit_callbacks
):
    data = {
        "export-purpose": "ad_targeting",
        "export-channel": "social",
        "export-format": "csv",
        "export-identifiers": "hashed",
    }
    assert (
        "Export queued."
        in post(marketer_browser, "export", lyon, data, django_capture_on_commit_callbacks).content.decode()
    )
    from audiences.models import AudienceExport

    export = AudienceExport.objects.get()
    assert (export.status, export.row_count, export.identifiers) == ("ready", 2, "hashed")
    assert export.created_by_id == int(marketer_browser.session["_auth_user_id"])  # logged: who asked
    assert "2 of 3" in change_page(marketer_browser, lyon)
    body = b"".join(
        marketer_browser.get(reverse("admin:audiences_audienceexport_download", args=[export.pk])).streaming_content
    ).decode()
    assert body.splitlines()[0] == "external_id,email_sha256,phone_sha256"
    assert sorted(line.split(",")[0] for line in body.splitlines()[1:]) == ["L0", "L1"]
    assert "l0@example.com" not in body


def test_a_marketer_cannot_export_plain_identifiers_and_bad_choices_are_named(
    marketer_browser, lyon, django_capture_on_commit_callbacks
):
    data = {
        "export-purpose": "ad_targeting",
        "export-channel": "social",
        "export-format": "csv",
        "export-identifiers": "plain",
    }
    page = post(marketer_browser, "export", lyon, data, django_capture_on_commit_callbacks).content.decode()
    assert "Export not queued. identifiers: Your role may export hashed identifiers only." in page
    page = post(
        marketer_browser, "export", lyon, {**data, "export-channel": "pigeon"}, django_capture_on_commit_callbacks
    ).content.decode()
    assert "Export not queued. channel: Select a valid choice. pigeon is not one of the available choices." in page
    from audiences.models import AudienceExport

    assert not AudienceExport.objects.exists()


def test_a_viewer_sees_the_panels_without_buttons_and_cannot_post(client, workspace, lyon):
    client.force_login(make_user(workspace=workspace, role="viewer"))
    page = change_page(client, lyon)
    assert "Index table" in page and "No export yet." in page
    assert "formaction" not in page
    for name in ("refresh", "analyse", "export", "suggestion_create"):
        assert client.post(reverse(f"admin:segments_segment_{name}", args=[lyon.pk])).status_code == 403


def test_the_panels_views_answer_404_for_another_workspace(
    marketer_browser, other_workspace, eager_tasks, django_capture_on_commit_callbacks
):
    from audiences.exports import export_request
    from audiences.services import audience_compute

    make_profile(workspace=other_workspace, city="Lyon")
    theirs = segment_create(workspace=other_workspace, name="Theirs", definition=LYON)
    audience_compute(segment_id=theirs.pk)
    theirs = Segment.objects.get(pk=theirs.pk)
    with django_capture_on_commit_callbacks(execute=True):
        export = export_request(
            segment=theirs, purpose="analytics", channel="web", format="csv", identifiers="hashed", by=None, role=None
        )
    assert marketer_browser.get(reverse("admin:segments_segment_status", args=[theirs.pk])).status_code == 404
    for name in ("refresh", "analyse", "export", "suggestion_create"):
        assert marketer_browser.post(reverse(f"admin:segments_segment_{name}", args=[theirs.pk])).status_code == 404
    download = reverse("admin:audiences_audienceexport_download", args=[export.pk])
    assert marketer_browser.get(download).status_code == 404


def test_durations_are_iso_8601_in_the_admin_as_in_the_api(marketer_browser, workspace):
    r = marketer_browser.post(reverse("admin:segments_segment_add"), {**form(workspace, LYON), "refresh_every": "PT6H"})
    assert r.status_code == 302
    segment = Segment.objects.get()
    assert segment.refresh_every.total_seconds() == 6 * 3600
    page = marketer_browser.get(reverse("admin:segments_segment_change", args=[segment.pk])).content.decode()
    assert 'name="refresh_every" value="PT6H"' in page
    r = marketer_browser.post(
        reverse("admin:segments_segment_change", args=[segment.pk]), {**form(workspace, LYON), "refresh_every": "often"}
    )
    assert "Enter an ISO 8601 duration such as PT30M, PT1H or P7D." in r.content.decode()
