"""Insights in the admin: the pages render their charts, buttons queue the jobs for the user's own
workspace only, refusals show as messages, and another workspace's rows are out of reach."""

import pytest
from django.urls import reverse

from insights.models import InsightJob, Lookalike, PredictiveModel, RfmRun, RfmSegment
from insights.prediction import model_train
from insights.rfm import rfm_compute
from tests.factories import make_user
from tests.insights.data import planted_base
from tests.insights.test_learning import _region_segment

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer_browser(client, workspace):
    client.force_login(make_user(workspace=workspace, role="marketer"))
    return client


def test_rfm_pages_and_the_score_button(
    marketer_browser, workspace, other_workspace, eager_tasks, django_capture_on_commit_callbacks
):
    planted_base(workspace, n=200)
    run = rfm_compute(workspace=workspace)
    page = marketer_browser.get(reverse("admin:insights_rfmrun_change", args=[run.pk])).content.decode()
    assert 'data-chart="rfm-distribution"' in page and "What each score covers" in page
    listing = marketer_browser.get(reverse("admin:insights_rfmrun_changelist")).content.decode()
    assert "Score the customers now" in listing
    with django_capture_on_commit_callbacks(execute=True):
        r = marketer_browser.post(reverse("admin:insights_rfmrun_compute"), {"workspace": workspace.pk})
    assert r.status_code == 302 and RfmRun.objects.filter(workspace=workspace).count() == 2
    assert InsightJob.objects.get(kind="rfm").status == "ready"
    # Not for a workspace the user is not a member of.
    assert (
        marketer_browser.post(reverse("admin:insights_rfmrun_compute"), {"workspace": other_workspace.pk}).status_code
        == 403
    )
    # A named segment's edit that would leave another unreachable is refused, and nothing changes.
    champions = RfmSegment.objects.get(workspace=workspace, code="champions")
    data = {
        "name": "Champions",
        "description": "",
        "position": 1,
        "r_min": 1,
        "r_max": 5,
        "f_min": 1,
        "f_max": 5,
        "m_min": 1,
        "m_max": 5,
    }
    r = marketer_browser.post(reverse("admin:insights_rfmsegment_change", args=[champions.pk]), data, follow=True)
    assert "unreachable" in r.content.decode()
    champions.refresh_from_db()
    assert champions.r_min == 4


def test_a_model_page_shows_its_curve_and_picks_a_threshold(
    marketer_browser, workspace, eager_tasks, django_capture_on_commit_callbacks
):
    planted_base(workspace, n=600)
    segment = _region_segment(workspace)
    with django_capture_on_commit_callbacks(execute=True):
        r = marketer_browser.post(
            reverse("admin:insights_predictivemodel_add"),
            {
                "workspace": workspace.pk,
                "kind": "membership",
                "name": "",
                "segment": segment.pk,
                "horizon_days": "",
                "pu_correction": "auto",
            },
        )
    assert r.status_code == 302, r.content.decode()[:2000]
    model = PredictiveModel.objects.get(workspace=workspace)
    assert model.version == 1 and model.status == "ready"
    page = marketer_browser.get(reverse("admin:insights_predictivemodel_change", args=[model.pk])).content.decode()
    assert 'data-chart="model-curve"' in page and "Features left out" in page
    r = marketer_browser.post(
        reverse("admin:insights_predictivemodel_threshold", args=[model.pk]), {"precision": "0.5"}, follow=True
    )
    model.refresh_from_db()
    assert model.threshold is not None and "Threshold" in r.content.decode()
    r = marketer_browser.post(
        reverse("admin:insights_predictivemodel_threshold", args=[model.pk]), {"precision": "abc"}, follow=True
    )
    assert "Not picked" in r.content.decode()
    # A second model of the segment is a form error, not a crash.
    r = marketer_browser.post(
        reverse("admin:insights_predictivemodel_add"),
        {
            "workspace": workspace.pk,
            "kind": "membership",
            "name": "",
            "segment": segment.pk,
            "horizon_days": "",
            "pu_correction": "auto",
        },
    )
    assert r.status_code == 200 and "already" in r.content.decode()


def test_lookalike_pages_and_another_workspace(client, workspace, other_workspace, eager_tasks):
    planted_base(workspace, n=300)
    segment = _region_segment(workspace)
    model = PredictiveModel.objects.create(workspace=workspace, kind="membership", name="M", segment=segment)
    model_train(model=model)
    lookalike = Lookalike.objects.create(workspace=workspace, seed=segment)
    viewer = make_user(workspace=workspace, role="viewer")
    client.force_login(viewer)
    assert client.get(reverse("admin:insights_lookalike_change", args=[lookalike.pk])).status_code == 200
    assert client.post(reverse("admin:insights_lookalike_refresh", args=[lookalike.pk])).status_code == 403
    assert client.post(reverse("admin:insights_predictivemodel_train", args=[model.pk])).status_code == 403
    stranger = make_user(workspace=other_workspace, role="admin")
    client.force_login(stranger)
    for name, pk in (("lookalike", lookalike.pk), ("predictivemodel", model.pk)):
        r = client.get(reverse(f"admin:insights_{name}_change", args=[pk]))
        assert r.status_code in (302, 404)  # Django's admin sends an unknown row back to the list
    assert client.post(reverse("admin:insights_lookalike_refresh", args=[lookalike.pk])).status_code == 404


def test_the_lifetime_value_page_its_warning_and_its_button(marketer_browser, workspace, other_workspace):
    from django.utils import timezone

    from insights.models import ClvRun

    run = ClvRun.objects.create(
        workspace=workspace,
        version=1,
        as_of=timezone.now(),
        status="ready",
        customers=100,
        parameters={"bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, "gamma_gamma": {"p": 6.25}},
        standard_errors={"bgnbd": {"r": 0.0126, "alpha": 0.378, "a": 0.186, "b": 0.705}, "gamma_gamma": {"p": None}},
        frequency_value_correlation=0.45,
        holdout={
            "days": 273,
            "calibration_end": "1997-09-30T12:00:00+00:00",
            "customers": 100,
            "expected": 48.5,
            "actual": 50,
            "bands": [
                {"frequency": "0", "customers": 60, "expected": 12.5, "actual": 10},
                {"frequency": "1", "customers": 40, "expected": 36.0, "actual": 40},
            ],
        },
        deciles=[{"decile": d, "customers": 10, "clv": 100.0 * d, "share": d / 55} for d in range(10, 0, -1)],
    )
    page = marketer_browser.get(reverse("admin:insights_clvrun_change", args=[run.pk])).content.decode()
    assert 'data-chart="clv-deciles"' in page and "4.414" in page
    # The uncertainty: r = 0.243 +- 1.96 x 0.0126; a parameter without one shows a dash.
    assert "0.0126" in page and "0.2183 to 0.2677" in page
    # The holdout chart: purchases per customer by band, expected against actual.
    assert 'data-chart="clv-holdout"' in page
    assert 'data-series="Expected by BG/NBD" data-values="0.21,0.90"' in page
    assert 'data-series="Actual" data-values="0.17,1.00"' in page
    assert "BG/NBD expected 48 purchases in the 273 days after; 50 were made (-3 %)." in page
    assert "Warning: frequency and purchase value are correlated (0.45)" in page
    listing = marketer_browser.get(reverse("admin:insights_clvrun_changelist")).content.decode()
    assert "Fit and score lifetime value now" in listing and 'name="horizon_months"' in listing
    compute = reverse("admin:insights_clvrun_compute")
    refused = marketer_browser.post(compute, {"workspace": workspace.pk, "horizon_months": "0"}, follow=True)
    assert "A whole number from 1 to 120." in refused.content.decode()
    assert not InsightJob.objects.filter(kind="clv").exists()
    refused = marketer_browser.post(compute, {"workspace": workspace.pk, "holdout_days": "-1"}, follow=True)
    assert "A whole number from 0 to 3660." in refused.content.decode()
    assert not InsightJob.objects.filter(kind="clv").exists()
    marketer_browser.post(
        compute, {"workspace": workspace.pk, "horizon_months": "6", "discount_rate": "0.02", "holdout_days": "0"}
    )
    job = InsightJob.objects.get(kind="clv")
    assert job.params == {"horizon_months": 6, "discount_rate": 0.02, "holdout_days": 0}
    assert marketer_browser.post(compute, {"workspace": other_workspace.pk}).status_code == 403
