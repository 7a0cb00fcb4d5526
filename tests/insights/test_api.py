"""Insights in the API: jobs answered 202 and run by the worker (in-process here), results read back,
bad input refused with the field and the reason, and nothing of another workspace reachable."""

import pytest
from django.urls import reverse

from insights.models import Lookalike, PredictiveModel, RfmSegment
from segments.models import Segment
from tests.insights.data import affinity_base, grant, planted_base
from tests.insights.test_learning import _region_segment

pytestmark = pytest.mark.django_db


def url(name: str, **kwargs) -> str:
    return reverse(name, kwargs={"workspace": "maison", **kwargs})


def run(client, name: str, body: dict, capture, **kwargs) -> dict:
    """POST a job, let it run (on commit, in-process), and return it as it ended."""
    with capture(execute=True):
        r = client.post(url(name, **kwargs), body, format="json")
    assert r.status_code == 202, r.json()
    job = client.get(url("insight-job-detail", pk=r.json()["id"])).json()
    assert job["status"] == "ready", job
    assert job["progress"] == 100
    return job


def test_rfm_runs_and_named_segments(marketer, workspace, eager_tasks, django_capture_on_commit_callbacks):
    planted_base(workspace, n=300)
    job = run(marketer, "rfm-run-list", {}, django_capture_on_commit_callbacks)
    scoring = marketer.get(url("rfm-run-detail", pk=job["result"]["run"])).json()
    assert scoring["customers"] > 0
    assert sum(row["customers"] for row in scoring["distribution"]) == scoring["customers"]
    segments = marketer.get(url("rfm-segment-list")).json()["results"]
    assert len(segments) == 10
    assert all(cells > 0 for code, cells in marketer.get(url("rfm-segment-reachability")).json().items() if code)
    champions = RfmSegment.objects.get(workspace=workspace, code="champions")
    # Champions widened to everything: every later segment would be dead.
    r = marketer.patch(url("rfm-segment-detail", pk=champions.pk), {"r_min": 1, "f_min": 1, "m_min": 1}, format="json")
    assert r.status_code == 400 and r.json()["non_field_errors"][0]["code"] == "unreachable"
    champions.refresh_from_db()
    assert champions.r_min == 4, "a refused edit changes nothing"
    r = marketer.patch(url("rfm-segment-detail", pk=champions.pk), {"name": "Champions !"}, format="json")
    assert r.status_code == 200 and r.json()["name"] == "Champions !"
    r = marketer.patch(url("rfm-segment-detail", pk=champions.pk), {"r_min": 9}, format="json")
    assert r.status_code == 400 and "r_min" in r.json()
    # The rule criterion is checked against the workspace's segments.
    r = marketer.post(url("segment-preview-definition"), {"definition": {"rfm": {"segment": "nope"}}}, format="json")
    assert r.status_code == 400 and "unknown RFM segment" in r.json()["definition"][0]["message"]
    r = marketer.post(url("segment-preview-definition"), {"definition": {"rfm": {"r": {"gte": 6}}}}, format="json")
    assert r.status_code == 400


def test_a_membership_model_its_threshold_and_its_rule(
    marketer, workspace, eager_tasks, django_capture_on_commit_callbacks
):
    planted_base(workspace, n=800)
    segment = _region_segment(workspace)
    job = run(
        marketer,
        "insight-model-list",
        {"kind": "membership", "segment": segment.pk},
        django_capture_on_commit_callbacks,
    )
    model = marketer.get(url("insight-model-detail", pk=job["subject_id"])).json()
    assert model["status"] == "ready" and model["version"] == 1 and model["metrics"]["auc"] > 0.7
    assert {row["feature"] for row in model["excluded"]} >= {"region_0"}
    picked = marketer.post(url("insight-model-threshold", pk=model["id"]), {"precision": 0.5}, format="json")
    assert picked.status_code == 200 and picked.json()["precision"] >= 0.5
    assert marketer.post(url("insight-model-threshold", pk=model["id"]), {}, format="json").status_code == 400
    r = marketer.post(url("insight-model-threshold", pk=model["id"]), {"reach": 0}, format="json")
    assert r.status_code == 400 and "reach" in r.json()
    # One membership model a segment; a purchase model needs its horizon; a segment needs its audience.
    r = marketer.post(url("insight-model-list"), {"kind": "membership", "segment": segment.pk}, format="json")
    assert r.status_code == 409 and r.json()["segment"][0]["code"] == "unique"
    r = marketer.post(url("insight-model-list"), {"kind": "purchase"}, format="json")
    assert r.status_code == 400 and r.json()["horizon_days"][0]["code"] == "required"
    fresh = Segment.objects.create(
        workspace=workspace, name="Never computed", definition={"field": "city", "op": "eq", "value": "X"}
    )
    r = marketer.post(url("insight-model-list"), {"kind": "membership", "segment": fresh.pk}, format="json")
    assert r.status_code in (400, 404)
    # The probability criterion.
    r = marketer.post(
        url("segment-preview-definition"),
        {"definition": {"probability": {"segment": segment.pk, "gte": 0.7}}},
        format="json",
    )
    assert r.status_code == 200 and r.json()["count"] > 0
    r = marketer.post(
        url("segment-preview-definition"), {"definition": {"probability": {"model": 10**9, "gte": 0.7}}}, format="json"
    )
    assert r.status_code == 400 and "no model" in r.json()["definition"][0]["message"]


def test_lookalikes_and_personas_are_segments(marketer, workspace, eager_tasks, django_capture_on_commit_callbacks):
    affinity_base(workspace, n=1500)
    segment = _region_segment(workspace)
    grant(workspace, workspace.profiles.values_list("pk", flat=True), purpose="ad_targeting", channel="display")
    job = run(marketer, "lookalike-list", {"seed": segment.pk}, django_capture_on_commit_callbacks)
    lookalike = marketer.get(url("lookalike-detail", pk=job["subject_id"])).json()
    assert [band["band"] for band in lookalike["bands"]] == list(range(1, 11))
    assert lookalike["evaluation"][0]["precision"] >= lookalike["evaluation"][-1]["precision"]
    band = Segment.objects.get(pk=lookalike["bands"][4]["segment"])
    assert band.audience.current_version >= 1 and band.audience.size == lookalike["bands"][4]["size"]
    r = marketer.post(url("lookalike-list"), {"seed": segment.pk}, format="json")
    assert r.status_code == 409 and r.json()["seed"][0]["code"] == "unique"
    job = run(marketer, "persona-run-list", {"facets": "behavioural", "k": 2}, django_capture_on_commit_callbacks)
    personas = marketer.get(url("persona-list")).json()["results"]
    assert len(personas) == 2 and all(p["segment"] for p in personas)
    r = marketer.post(url("persona-rename", pk=personas[0]["id"]), {"name": "Fidèles du mail"}, format="json")
    assert r.status_code == 200 and r.json()["named_by_user"]
    assert Segment.objects.get(pk=personas[0]["segment"]).name.endswith("Fidèles du mail")
    r = marketer.post(url("persona-rename", pk=personas[1]["id"]), {"name": "Fidèles du mail"}, format="json")
    assert r.status_code == 409 and r.json()["name"][0]["code"] == "unique"
    r = marketer.post(url("persona-run-list"), {"k": 1}, format="json")
    assert r.status_code == 400 and "k" in r.json()


def test_roles_and_workspaces(marketer, viewer, outsider, workspace, other_workspace, eager_tasks):
    planted_base(workspace, n=100)
    segment = _region_segment(workspace)
    model = PredictiveModel.objects.create(workspace=workspace, kind="membership", name="M", segment=segment)
    lookalike = Lookalike.objects.create(workspace=workspace, seed=segment)
    assert viewer.get(url("insight-model-detail", pk=model.pk)).status_code == 200
    assert viewer.post(url("insight-model-train", pk=model.pk)).status_code == 403
    assert viewer.post(url("rfm-run-list"), {}, format="json").status_code == 403
    # Another workspace's admin sees none of it, and cannot name this workspace's segment.
    other = lambda name, **kw: reverse(name, kwargs={"workspace": "rival", **kw})  # noqa: E731
    assert outsider.get(url("insight-model-detail", pk=model.pk)).status_code == 404
    assert outsider.get(other("insight-model-detail", pk=model.pk)).status_code == 404
    assert outsider.get(other("lookalike-detail", pk=lookalike.pk)).status_code == 404
    r = outsider.post(other("insight-model-list"), {"kind": "membership", "segment": segment.pk}, format="json")
    assert r.status_code == 400 and r.json()["segment"][0]["code"] == "does_not_exist"
    r = outsider.post(other("lookalike-list"), {"seed": segment.pk}, format="json")
    assert r.status_code == 400 and r.json()["seed"][0]["code"] == "does_not_exist"
    assert outsider.get(other("insight-model-list")).json()["count"] == 0
