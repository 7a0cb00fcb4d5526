"""The reporting API: figures in, reports out (JSON and CSV), report jobs; roles and tenancy across reports and rules."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Role
from campaigns.models import LedgerEntry
from core.time import local_day
from optimisation.models import Rule
from reporting.models import DeliveryFigure, ReportJob
from tests.factories import make_running_campaign
from tests.reporting.measured import measured_targets, rule_body, two_target_campaign

pytestmark = pytest.mark.django_db
BASE = "/api/workspaces/maison"


def day(workspace, days_ago=1):
    return local_day(workspace, timezone.now() - timedelta(days=days_ago)).isoformat()


@pytest.fixture
def campaign(workspace):
    return two_target_campaign(workspace)


def figure(campaign, target=None, **values):
    row = {
        "campaign": campaign.pk,
        "channel": "display",
        "day": day(campaign.workspace),
        "source": "dsp",
        "impressions": 20000,
        "clicks": 400,
        "conversions": 20,
        "spend": "500.00",
        "revenue": "1750.00",
    }
    if target is not None:
        row["target"] = target.pk
    row.update(values)
    return row


def test_figures_are_an_idempotent_batch(marketer, campaign, eager_tasks, django_capture_on_commit_callbacks):
    a = campaign.targets.first()
    with django_capture_on_commit_callbacks(execute=True):
        r = marketer.post(f"{BASE}/delivery-figures/", {"figures": [figure(campaign, a)]}, format="json")
    assert r.status_code == 200, r.json()
    assert (r.json()["created"], r.json()["updated"]) == (1, 0)
    again = marketer.post(f"{BASE}/delivery-figures/", {"figures": [figure(campaign, a)]}, format="json")
    assert again.json()["unchanged"] == 1
    assert LedgerEntry.objects.filter(campaign=campaign, kind="spend").count() == 1
    listed = marketer.get(f"{BASE}/delivery-figures/?campaign={campaign.pk}&channel=display").json()
    assert listed["count"] == 1 and listed["results"][0]["booked_spend"] == "500.00"
    # the ingestion queued the roll-up, which ran in-process
    report = marketer.get(f"{BASE}/reports/?campaign={campaign.pk}").json()
    assert report["totals"]["spend"] == "500.00"


def test_bad_rows_are_named_by_index_and_field(marketer, campaign, other_workspace):
    foreign = make_running_campaign(workspace=other_workspace)
    rows = [
        figure(campaign),
        figure(campaign, channel="carrier-pigeon"),
        figure(campaign, spend="-1"),
        figure(foreign),
        figure(campaign, day="1999-01-01"),
        figure(campaign, channel="sms"),
    ]
    r = marketer.post(f"{BASE}/delivery-figures/", {"figures": rows}, format="json")
    assert r.status_code == 400
    errors = r.json()["figures"]
    assert set(errors) == {"1", "2", "3", "4"}
    assert errors["1"]["channel"][0]["code"] == "invalid_choice"
    assert errors["2"]["spend"][0]["code"] == "min_value"
    assert errors["3"]["campaign"][0]["message"] == "No such campaign in this workspace."
    assert errors["4"]["day"][0]["code"] == "out_of_range"
    # the rows that parse are checked against the campaign next, still all or nothing
    r = marketer.post(f"{BASE}/delivery-figures/", {"figures": [rows[0], rows[5]]}, format="json")
    assert r.status_code == 400 and r.json()["figures"]["1"]["channel"][0]["code"] == "invalid_channel"
    assert not DeliveryFigure.objects.exists()
    assert marketer.post(f"{BASE}/delivery-figures/", {"figures": []}, format="json").status_code == 400


@pytest.fixture
def measured(workspace, campaign):
    return measured_targets(workspace, campaign)


def test_a_report_grouped_by_channel_has_kpis_reach_and_frequency(marketer, measured):
    campaign, a, b = measured
    r = marketer.get(f"{BASE}/reports/?campaign={campaign.pk}&group_by=channel&basis=reported")
    assert r.status_code == 200
    rows = {row["channel"]: row for row in r.json()["rows"]}
    display = rows["display"]
    assert (display["ctr"], display["cpm"], display["cpc"], display["cvr"], display["cpa"], display["roas"]) == (
        "0.020000",
        "25.0000",
        "1.2500",
        "0.050000",
        "25.0000",
        "3.5000",
    )
    email = rows["email"]
    assert (email["sends"], email["reach"], email["frequency"]) == (4, 3, "1.3333")
    assert email["ctr"] is None and email["roas"] is None  # zero denominators
    assert (email["attributed_conversions"], email["attributed_revenue"]) == (1, "64.00")
    attributed = marketer.get(f"{BASE}/reports/?campaign={campaign.pk}&group_by=channel").json()
    assert {row["channel"]: row["conversions"] for row in attributed["rows"]} == {"display": 0, "email": 1}


def test_reports_filter_and_group_by_segment_target_and_day(marketer, measured, workspace):
    campaign, a, b = measured
    r = marketer.get(f"{BASE}/reports/?group_by=target,day&channel=email")
    [row] = r.json()["rows"]
    assert (row["target"], row["day"], row["sends"]) == (b.pk, day(workspace), 4)
    by_segment = marketer.get(f"{BASE}/reports/?group_by=segment").json()["rows"]
    assert by_segment[0]["segment"] == a.segment_id and by_segment[0]["segment_name"] == a.segment.name
    empty = marketer.get(f"{BASE}/reports/?date_from=2001-01-01&date_to=2001-01-31").json()
    assert empty["rows"] == [empty["totals"]]  # ungrouped: one row, the totals
    assert (empty["totals"]["spend"], empty["totals"]["impressions"], empty["totals"]["ctr"]) == ("0.00", 0, None)
    totals = marketer.get(f"{BASE}/reports/").json()["totals"]
    assert (totals["spend"], totals["impressions"], totals["sends"], totals["reach"]) == ("500.00", 20000, 4, 3)


def test_a_report_as_csv(marketer, measured):
    campaign, a, b = measured
    r = marketer.get(f"{BASE}/reports/?group_by=channel&format=csv&basis=reported")
    assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.content.decode())))
    assert [row["channel"] for row in rows] == ["display", "email"]
    assert rows[0]["roas"] == "3.5000" and rows[1]["roas"] == ""
    assert list(rows[0])[:3] == ["channel", "impressions", "clicks"]


@pytest.mark.parametrize(
    "query, field",
    [
        ("group_by=planet", "group_by"),
        ("campaign=abc", "campaign"),
        ("date_from=2026-02-30", "date_from"),
        ("date_from=2026-03-02&date_to=2026-03-01", "date_to"),
        ("basis=vibes", "basis"),
        ("campaign=999999", "campaigns"),
    ],
)
def test_bad_report_parameters_are_a_400_naming_the_field(marketer, query, field, campaign):
    r = marketer.get(f"{BASE}/reports/?{query}")
    assert r.status_code == 400 and field in r.json(), r.json()


def test_a_report_job_runs_and_downloads(marketer, measured, eager_tasks, django_capture_on_commit_callbacks):
    campaign, a, b = measured
    with django_capture_on_commit_callbacks(execute=True):
        r = marketer.post(f"{BASE}/report-jobs/", {"group_by": ["channel"], "basis": "reported"}, format="json")
    assert r.status_code == 202
    job = marketer.get(f"{BASE}/report-jobs/{r.json()['id']}/").json()
    assert job["status"] == "done" and job["rows"] == 2 and job["download_url"].endswith("/download/")
    download = marketer.get(job["download_url"])
    body = b"".join(download.streaming_content).decode()
    assert body.splitlines()[0].startswith("channel,impressions") and "display" in body
    bad = marketer.post(f"{BASE}/report-jobs/", {"group_by": ["planet"]}, format="json")
    assert bad.status_code == 400 and "group_by" in bad.json()


def test_attribution_settings(marketer, viewer):
    r = viewer.get(f"{BASE}/reports/attribution-settings/")
    assert r.json()["click_window"] == "P7D" and r.json()["view_window"] == "P1D"  # ISO 8601
    assert (
        viewer.put(f"{BASE}/reports/attribution-settings/", {"click_window": "3 00:00:00"}, format="json").status_code
        == 403
    )
    r = marketer.put(
        f"{BASE}/reports/attribution-settings/",
        {"click_window": "P3D", "view_window": "12:00:00"},  # the older form is still read
        format="json",
    )
    assert r.status_code == 200 and (r.json()["click_window"], r.json()["view_window"]) == ("P3D", "PT12H")
    r = marketer.put(
        f"{BASE}/reports/attribution-settings/", {"click_window": "400 00:00:00", "view_window": "1"}, format="json"
    )
    assert r.status_code == 400 and "click_window" in r.json()
    r = marketer.put(f"{BASE}/reports/attribution-settings/", {"click_window": "a week"}, format="json")
    assert r.json()["click_window"] == [
        {"message": "Expected an ISO 8601 duration such as PT30M, PT1H or P7D.", "code": "invalid"}
    ]


def test_viewers_read_and_cannot_write(viewer, campaign, measured):
    assert viewer.get(f"{BASE}/reports/").status_code == 200
    assert viewer.post(f"{BASE}/delivery-figures/", {"figures": [figure(campaign)]}, format="json").status_code == 403
    assert viewer.post(f"{BASE}/rules/", rule_body(campaign), format="json").status_code == 403
    assert viewer.post(f"{BASE}/reports/refresh/", {}, format="json").status_code == 403


def test_another_workspace_sees_nothing(outsider, client_for, measured, workspace, other_workspace):
    campaign, a, b = measured
    rule = Rule.objects.create(
        workspace=workspace,
        campaign=campaign,
        name="r",
        action="pause",
        conditions=[{"kpi": "roas", "days": 7, "operator": "lt", "threshold": "1"}],
    )
    job = ReportJob.objects.create(workspace=workspace, parameters={})
    for url in (
        f"{BASE}/reports/",
        f"{BASE}/delivery-figures/",
        f"{BASE}/rules/{rule.pk}/",
        f"{BASE}/report-jobs/{job.pk}/",
        f"{BASE}/campaigns/{campaign.pk}/reallocation/",
    ):
        assert outsider.get(url).status_code == 404, url
    theirs = "/api/workspaces/rival"
    assert outsider.get(f"{theirs}/rules/{rule.pk}/").status_code == 404
    assert outsider.get(f"{theirs}/report-jobs/{job.pk}/").status_code == 404
    assert outsider.get(f"{theirs}/report-jobs/{job.pk}/download/").status_code == 404
    assert outsider.post(f"{theirs}/rules/{rule.pk}/run/").status_code == 404
    report = outsider.get(f"{theirs}/reports/?group_by=campaign").json()
    assert report["rows"] == []
    assert outsider.get(f"{theirs}/reports/?campaign={campaign.pk}").status_code == 400
    r = outsider.post(f"{theirs}/delivery-figures/", {"figures": [figure(campaign)]}, format="json")
    assert r.status_code == 400 and r.json()["figures"]["0"]["campaign"][0]["code"] == "does_not_exist"
    r = outsider.post(f"{theirs}/rules/", rule_body(campaign), format="json")
    assert r.status_code == 400 and "campaign" in r.json()
    assert Role.ADMIN  # the outsider is an admin there: roles never cross workspaces


def test_options_describe_the_report_endpoints(marketer):
    for url in (f"{BASE}/reports/", f"{BASE}/reports/attribution-settings/", f"{BASE}/reports/refresh/"):
        r = marketer.options(url)
        assert r.status_code == 200 and r.json()["name"], url
