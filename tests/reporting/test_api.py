"""The reporting and rules API: figures in, reports out (JSON and CSV), report jobs, rules, reallocation."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Role
from campaigns.models import Campaign, LedgerEntry
from core.time import local_day
from optimisation.models import Rule, RuleEvaluation
from reporting.models import DeliveryFigure, ReportJob
from reporting.services import rollup_run
from tests.factories import make_order, make_profile, make_running_campaign, make_touch

pytestmark = pytest.mark.django_db
BASE = "/api/workspaces/maison"


def day(workspace, days_ago=1):
    return local_day(workspace, timezone.now() - timedelta(days=days_ago)).isoformat()


@pytest.fixture
def campaign(workspace):
    return make_running_campaign(workspace=workspace, targets=2, channels=("email", "display"))


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
    """Figures on both targets and channels, deliveries and an attributed order."""
    from reporting.services import figures_ingest

    a, b = campaign.targets.order_by("id")
    yesterday = local_day(workspace, timezone.now() - timedelta(days=1))
    figures_ingest(
        rows=[
            {
                "campaign": campaign,
                "target": a,
                "channel": "display",
                "day": yesterday,
                "source": "dsp",
                "impressions": 20000,
                "clicks": 400,
                "conversions": 20,
                "spend": Decimal("500.00"),
                "revenue": Decimal("1750.00"),
            },
            {
                "campaign": campaign,
                "target": b,
                "channel": "email",
                "day": yesterday,
                "source": "esp",
                "impressions": 0,
                "clicks": 0,
                "conversions": 0,
                "spend": Decimal("0"),
                "revenue": Decimal("0"),
            },
        ]
    )
    people = [make_profile(workspace=workspace) for _ in range(3)]
    sent = timezone.now() - timedelta(days=1, hours=1)
    for person in people:
        make_touch(campaign=campaign, target=b, profile=person, sent_at=sent)
    make_touch(campaign=campaign, target=b, profile=people[0], sent_at=sent + timedelta(minutes=5))
    make_order(profile=people[0], ordered_at=sent + timedelta(hours=2), amount="64.00")
    rollup_run(workspace=workspace)
    return campaign, a, b


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


def rule_body(campaign, **fields):
    body = {
        "name": "Cut poor ROAS",
        "campaign": campaign.pk,
        "conditions": [{"kpi": "roas", "days": 7, "operator": "lt", "threshold": "4"}],
        "basis": "reported",
        "min_impressions": 1000,
        "action": "budget_percent",
        "change_percent": "-20",
        "budget_min": "100.00",
        "schedule": "30min",
    }
    body.update(fields)
    return body


def test_rules_preview_run_and_history(marketer, measured, workspace):
    campaign, a, b = measured
    Campaign.objects.filter(pk=campaign.pk).update(budget_total=Decimal("2000.00"))
    r = marketer.post(f"{BASE}/rules/", rule_body(campaign), format="json")
    assert r.status_code == 201, r.json()
    rule_id = r.json()["id"]
    preview = marketer.post(f"{BASE}/rules/{rule_id}/preview/").json()
    assert preview[0]["would_act"] and preview[0]["plan"] == "total budget 2000.00 -> 1600.00 EUR"
    assert preview[0]["conditions"][0]["value"] == "3.5000"
    assert not RuleEvaluation.objects.exists()
    ran = marketer.post(f"{BASE}/rules/{rule_id}/run/").json()
    assert ran[0]["outcome"] == "acted" and ran[0]["source"] == "manual"
    assert Campaign.objects.get(pk=campaign.pk).budget_total == Decimal("1600.00")
    history = marketer.get(f"{BASE}/rules/{rule_id}/evaluations/").json()
    assert history["count"] == 1 and history["results"][0]["seen"]["conditions"][0]["holds"] is True
    assert marketer.get(f"{BASE}/campaigns/{campaign.pk}/rule-evaluations/").json()["count"] == 1


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"conditions": [{"kpi": "roas", "operator": "lt"}]}, "conditions[0].threshold"),
        ({"action": "budget_percent", "change_percent": None}, "change_percent"),
        ({"action": "notify"}, "notify_url"),
        ({"notify_url": "https://hooks.example.com/x"}, "notify_secret"),
        ({"budget_min": "500", "budget_max": "100"}, "budget_max"),
        ({"schedule": "weekly"}, "schedule"),
        ({"action": "explode"}, "action"),
    ],
)
def test_bad_rules_are_a_400_naming_the_field(marketer, campaign, fields, field):
    r = marketer.post(f"{BASE}/rules/", rule_body(campaign, **fields), format="json")
    assert r.status_code == 400 and field in r.json(), r.json()
    assert not Rule.objects.exists()


def test_reallocation_recommend_and_apply(marketer, viewer, workspace, measured):
    campaign, a, b = measured
    url = f"{BASE}/campaigns/{campaign.pk}/reallocation/?basis=reported&learning_conversions=0&min_share=10"
    plan = viewer.get(url).json()
    rows = {row["target"]: row for row in plan["targets"]}
    # b spent nothing: learning, keeps 50 %; a alone keeps its 50 %
    assert rows[b.pk]["learning"] is True and plan["moves"] == 0
    assert viewer.post(f"{BASE}/campaigns/{campaign.pk}/reallocate/", {}, format="json").status_code == 403
    r = marketer.post(
        f"{BASE}/campaigns/{campaign.pk}/reallocate/", {"basis": "reported", "reason": "test"}, format="json"
    )
    assert r.status_code == 200 and r.json()["moves"] == 0
    assert marketer.get(f"{BASE}/campaigns/{campaign.pk}/reallocation/?days=0").status_code == 400


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
