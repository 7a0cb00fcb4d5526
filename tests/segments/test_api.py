import pytest
from django.urls import reverse

from audiences.models import Audience
from segments.models import Segment
from segments.services import segment_create
from tests.factories import make_profile

LYON = {"field": "city", "op": "eq", "value": "Lyon"}


def url(name, **kwargs):
    return reverse(name, kwargs={"workspace": "maison", **kwargs})


@pytest.fixture
def lyonnais(workspace):
    return [make_profile(workspace=workspace, external_id=f"L{n}", city="Lyon") for n in range(3)] + [
        make_profile(workspace=workspace, external_id="P0", city="Paris")
    ]


def test_create_a_segment_and_see_its_audience_state(marketer, workspace, lyonnais):
    r = marketer.post(url("segment-list"), {"name": "Lyon", "definition": LYON, "refresh_every": "PT1H"}, format="json")
    assert r.status_code == 201, r.json()
    body = r.json()
    assert (body["kind"], body["definition"], body["refresh_every"], body["audience"]["status"]) == (
        "dynamic",
        LYON,
        "PT1H",
        "never",
    )
    assert Segment.objects.get(pk=body["id"]).owner == marketer.user


def test_a_bad_definition_is_a_400_naming_each_node(marketer, workspace):
    r = marketer.post(
        url("segment-list"),
        {"name": "Bad", "definition": {"all": [{"field": "age", "op": "gte", "value": "x"}, {"segment": 999}]}},
        format="json",
    )
    assert r.status_code == 400
    assert r.json() == {
        "definition": [{"message": "definition.all[0].value: expected a number.", "code": "invalid_rule"}]
    }
    r = marketer.post(url("segment-list"), {"name": "Ghost", "definition": {"segment": 999}}, format="json")
    assert r.json()["definition"][0]["code"] == "unknown_segment"
    r = marketer.post(url("segment-list"), {"name": "Empty", "kind": "dynamic"}, format="json")
    assert r.json()["definition"][0]["code"] == "rules_required"
    assert not Segment.objects.exists()


def test_a_cycle_is_refused_when_saved(marketer, workspace):
    a = segment_create(workspace=workspace, name="A", definition=LYON)
    b = segment_create(workspace=workspace, name="B", definition={"segment": a.pk})
    c = segment_create(workspace=workspace, name="C", definition={"all": [{"segment": b.pk}, LYON]})
    r = marketer.patch(url("segment-detail", pk=a.pk), {"definition": {"not": {"segment": c.pk}}}, format="json")
    assert r.status_code == 400
    assert r.json()["definition"][0] == {
        "message": "definition: segments would depend on themselves (A -> C -> B -> A).",
        "code": "cycle",
    }
    r = marketer.patch(url("segment-detail", pk=a.pk), {"definition": {"segment": a.pk}}, format="json")
    assert r.json()["definition"][0]["code"] == "cycle"
    a.refresh_from_db()
    assert a.definition == LYON


def test_preview_unsaved_rules_and_a_saved_segment(viewer, workspace, lyonnais):
    r = viewer.post(url("segment-preview-definition"), {"definition": LYON}, format="json")
    assert r.status_code == 200
    body = r.json()
    assert (body["count"], body["base"], body["share"]) == (3, 4, 0.75)
    assert [p["external_id"] for p in body["sample"]] == ["L0", "L1", "L2"]
    r = viewer.post(url("segment-preview-definition"), {"definition": {"field": "city"}}, format="json")
    assert r.status_code == 400 and "definition" in r.json()


def test_refresh_computes_the_audience_and_lists_members_and_runs(
    marketer, workspace, lyonnais, eager_tasks, django_capture_on_commit_callbacks
):
    segment = segment_create(workspace=workspace, name="Lyon", definition=LYON)
    with django_capture_on_commit_callbacks(execute=True):
        r = marketer.post(url("segment-refresh", pk=segment.pk))
    assert r.status_code == 202
    audience = Audience.objects.get(segment=segment)
    assert (audience.status, audience.current_version, audience.size) == ("ready", 1, 3)
    members = marketer.get(url("segment-members", pk=segment.pk)).json()
    assert [m["external_id"] for m in members["results"]] == ["L0", "L1", "L2"]
    runs = marketer.get(url("segment-runs", pk=segment.pk)).json()["results"]
    assert [(run["status"], run["size"], run["added"], run["trigger"]) for run in runs] == [("succeeded", 3, 3, "api")]


def test_manual_members_are_checked_and_applied_at_refresh(
    marketer, workspace, lyonnais, other_workspace, eager_tasks, django_capture_on_commit_callbacks
):
    segment = segment_create(workspace=workspace, name="Lyon", definition=LYON)
    paris, lyon0 = lyonnais[3], lyonnais[0]
    foreign = make_profile(workspace=other_workspace)
    r = marketer.post(url("segment-manual-members", pk=segment.pk), {"add": [foreign.pk]}, format="json")
    assert r.status_code == 400 and r.json()["profiles"][0]["code"] == "does_not_exist"
    r = marketer.post(
        url("segment-manual-members", pk=segment.pk), {"add": [paris.pk], "remove": [lyon0.pk]}, format="json"
    )
    assert r.json() == {"included": 1, "excluded": 1}
    with django_capture_on_commit_callbacks(execute=True):
        marketer.post(url("segment-refresh", pk=segment.pk))
    members = marketer.get(url("segment-members", pk=segment.pk)).json()["results"]
    assert sorted(m["external_id"] for m in members) == ["L1", "L2", "P0"]


def test_a_segment_used_by_another_cannot_be_deleted(marketer, workspace):
    a = segment_create(workspace=workspace, name="A", definition=LYON)
    segment_create(workspace=workspace, name="B", definition={"segment": a.pk})
    r = marketer.delete(url("segment-detail", pk=a.pk))
    assert r.status_code == 409 and r.json()["non_field_errors"][0]["code"] == "protected"
    assert Segment.objects.filter(pk=a.pk).exists()


def test_a_viewer_previews_but_cannot_create_or_refresh(viewer, workspace):
    segment = segment_create(workspace=workspace, name="A", definition=LYON)
    assert viewer.post(url("segment-list"), {"name": "X", "definition": LYON}, format="json").status_code == 403
    assert viewer.post(url("segment-refresh", pk=segment.pk)).status_code == 403


def test_another_workspaces_segments_are_404(outsider, workspace):
    segment = segment_create(workspace=workspace, name="A", definition=LYON)
    for name in ("segment-detail", "segment-preview", "segment-members", "segment-runs"):
        assert outsider.get(url(name, pk=segment.pk)).status_code == 404
        assert outsider.get(reverse(name, kwargs={"workspace": "rival", "pk": segment.pk})).status_code == 404
    assert outsider.post(reverse("segment-refresh", kwargs={"workspace": "rival", "pk": segment.pk})).status_code == 404


def test_a_segment_in_another_workspace_cannot_be_referenced(outsider, workspace):
    theirs = segment_create(workspace=workspace, name="A", definition=LYON)
    r = outsider.post(
        reverse("segment-list", kwargs={"workspace": "rival"}),
        {"name": "X", "definition": {"segment": theirs.pk}},
        format="json",
    )
    assert r.status_code == 400 and r.json()["definition"][0]["code"] == "unknown_segment"
