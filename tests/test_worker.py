"""The production mode: a real Celery worker process on Redis, reading PostgreSQL."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from config.celery import app
from customers.models import ImportJob, Profile
from tests.conftest import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_csv_import_is_run_by_the_worker(celery_worker_process, marketer, workspace):
    assert not app.conf.task_always_eager
    csv = "external_id;email;city\nP1;p1@example.com;Lyon\nP2;broken;Paris\n"
    r = marketer.post(
        reverse("import-job-list", kwargs={"workspace": "maison"}),
        {"kind": "profiles", "file": SimpleUploadedFile("p.csv", csv.encode())},
        format="multipart",
    )
    assert r.status_code == 202
    job_id = r.json()["id"]
    job = wait_for(lambda: ImportJob.objects.filter(pk=job_id, status="succeeded").first(), timeout=60)
    assert (job.rows, job.created, job.rejected) == (2, 1, 1)
    assert job.errors[0]["row"] == 3 and job.errors[0]["field"] == "email"
    assert Profile.objects.filter(workspace=workspace, external_id="P1", city="Lyon").exists()


def test_celery_is_configured_for_reliability():
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.task_time_limit and conf.task_soft_time_limit < conf.task_time_limit
    from django.conf import settings

    assert conf.broker_transport_options["visibility_timeout"] > settings.TASK_MAX_SECONDS


def test_an_activated_campaign_is_delivered_by_the_worker_and_a_trigger_follows_events(
    celery_worker_process, marketer, workspace
):
    """Activate through the API: the worker decides the deliveries and writes the CSV; ingested
    events reach the triggered target through the worker too."""
    from datetime import timedelta

    from django.utils import timezone

    from campaigns.models import Campaign, Handoff, PendingSend, Touch
    from tests.factories import make_campaign, make_consent, make_profile, make_segment

    ana = make_profile(workspace=workspace, external_id="ana", country="FR", email="ana@example.com")
    make_consent(profile=ana, purpose="direct_marketing", channel="email", recorded_at=timezone.now() - timedelta(1))
    campaign = make_campaign(workspace=workspace, segment=make_segment(workspace=workspace))
    url = f"/api/workspaces/maison/campaigns/{campaign.pk}/activate/"
    assert marketer.post(url, {}, format="json").json()["status"] == "active"
    wait_for(lambda: Touch.objects.filter(campaign=campaign, status="sent").exists(), timeout=60)
    assert Handoff.objects.get(campaign=campaign).file.name.endswith(".csv")

    triggered = make_campaign(
        workspace=workspace,
        targets=[{"segment": None, "trigger_event": "cart_abandoned", "trigger_delay": timedelta(hours=2)}],
    )
    Campaign.objects.filter(pk=triggered.pk).update(status="active")
    event = {
        "external_id": "ana",
        "type": "cart_abandoned",
        "channel": "web",
        "idempotency_key": "w1",
        "occurred_at": timezone.now().isoformat(),
    }
    r = marketer.post("/api/workspaces/maison/ingest/events/", {"items": [event]}, format="json")
    assert r.json()["created"] == 1
    pending = wait_for(lambda: PendingSend.objects.filter(target__campaign=triggered).first(), timeout=60)
    assert pending.status == "waiting" and pending.profile == ana


def test_a_report_job_and_the_roll_up_run_in_the_worker(celery_worker_process, marketer, workspace):
    """Figures posted through the API queue the roll-up; a report job is computed by the worker."""
    from datetime import timedelta

    from django.utils import timezone

    from core.time import local_day
    from reporting.models import DailyRollup, ReportJob
    from tests.factories import make_running_campaign

    campaign = make_running_campaign(workspace=workspace, channels=("display",))
    day = local_day(workspace, timezone.now() - timedelta(days=1)).isoformat()
    row = {
        "campaign": campaign.pk,
        "channel": "display",
        "day": day,
        "source": "dsp",
        "impressions": 1000,
        "clicks": 25,
        "spend": "40.00",
        "revenue": "100.00",
        "conversions": 2,
    }
    r = marketer.post("/api/workspaces/maison/delivery-figures/", {"figures": [row]}, format="json")
    assert r.status_code == 200, r.json()
    wait_for(lambda: DailyRollup.objects.filter(campaign=campaign, impressions=1000).exists(), timeout=60)
    r = marketer.post(
        "/api/workspaces/maison/report-jobs/", {"group_by": ["campaign"], "basis": "reported"}, format="json"
    )
    assert r.status_code == 202
    job = wait_for(lambda: ReportJob.objects.filter(pk=r.json()["id"], status="done").first(), timeout=60)
    assert job.rows == 1
    download = marketer.get(f"/api/workspaces/maison/report-jobs/{job.pk}/download/")
    body = b"".join(download.streaming_content).decode()
    assert body.splitlines()[1].startswith(f"{campaign.pk},{campaign.name},1000,25,40.00")


def test_an_insight_job_is_run_by_the_worker_with_its_progress(celery_worker_process, marketer, workspace):
    """RFM requested through the API: the worker scores the customers and the job ends at 100 %."""
    from insights.models import InsightJob, RfmRun
    from tests.factories import make_order, make_profile

    for i in range(5):
        make_order(profile=make_profile(workspace=workspace, external_id=f"c{i}"), amount=f"{10 + i}.00")
    r = marketer.post("/api/workspaces/maison/insights/rfm-runs/", {}, format="json")
    assert r.status_code == 202
    job = wait_for(lambda: InsightJob.objects.filter(pk=r.json()["id"], status="ready").first(), timeout=60)
    assert job.progress == 100 and job.result["customers"] == 5
    assert RfmRun.objects.get(pk=job.result["run"]).status == "ready"
