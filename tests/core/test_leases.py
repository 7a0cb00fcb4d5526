"""Leased jobs: a heartbeat keeps the lease while the job works, and a lapsed lease is taken back
and the job run again, by itself, whatever the kind of job."""

import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from audiences.exports import export_request
from audiences.models import Audience, AudienceExport, AudienceRun
from core.leases import LOST, MAX_RECOVERIES, job_recoverer, lease_heartbeat, lease_take, leases_recover
from customers.models import ImportJob
from customers.services import import_job_create
from reporting.models import ReportJob
from segments.models import SegmentAnalysis
from segments.quantification import segment_analysis_request
from tests.factories import make_profile, make_segment


def lapse(model, pk, **fields) -> None:
    """The state a worker killed mid-run leaves: running, under a lease nobody renews any more."""
    model.objects.filter(pk=pk).update(
        lease_token=uuid.uuid4(), lease_expires_at=timezone.now() - timedelta(seconds=1), **fields
    )


def test_lapsed_jobs_of_every_kind_are_run_again_by_the_recovery(
    workspace, eager_tasks, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = str(tmp_path)
    for n in range(3):
        make_profile(workspace=workspace, external_id=f"P{n}", email=f"p{n}@example.com")
    segment = make_segment(workspace=workspace)
    job = import_job_create(
        workspace=workspace, kind="profiles", filename="p.csv", content=b"external_id,city\nN1,Brest\n"
    )
    export = export_request(
        segment=segment,
        purpose="direct_marketing",
        channel="email",
        format="csv",
        identifiers="hashed",
        role="admin",
        by=None,
    )
    analysis = segment_analysis_request(segment=segment, min_count=1)
    report = ReportJob.objects.create(workspace=workspace, parameters={"group_by": ["day"]})
    audience = Audience.objects.get(segment=segment)

    lapse(ImportJob, job.pk, status=ImportJob.Status.RUNNING)
    lapse(AudienceExport, export.pk, status=AudienceExport.Status.RUNNING)
    lapse(SegmentAnalysis, analysis.pk, status=SegmentAnalysis.Status.RUNNING)
    lapse(ReportJob, report.pk, status=ReportJob.Status.RUNNING)
    lapse(Audience, audience.pk, status=Audience.Status.COMPUTING, next_version=2)
    AudienceRun.objects.create(audience=audience, version=2, trigger="manual", started_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        recovered = leases_recover()

    assert recovered == {
        "audience exports": 1,
        "audiences": 1,
        "imports": 1,
        "report files": 1,
        "segment analyses": 1,
    }
    job.refresh_from_db()
    assert (job.status, job.created, job.lease_token) == ("succeeded", 1, None)
    export.refresh_from_db()
    assert (export.status, export.lease_token) == ("ready", None)
    analysis.refresh_from_db()
    assert (analysis.status, analysis.workspace_id, analysis.lease_token) == ("ready", workspace.pk, None)
    report.refresh_from_db()
    assert (report.status, report.lease_token, bool(report.file)) == ("done", None, True)
    runs = list(AudienceRun.objects.filter(audience=audience).order_by("version").values_list("status", "trigger"))
    assert runs == [("succeeded", "manual"), ("failed", "manual"), ("succeeded", "recovery")]
    assert leases_recover() == {}  # nothing left to take back


def test_a_live_lease_is_not_taken_back(workspace, eager_tasks):
    job = import_job_create(workspace=workspace, kind="profiles", filename="p.csv", content=b"external_id\nN1\n")
    ImportJob.objects.filter(pk=job.pk).update(
        status="running", lease_token=uuid.uuid4(), lease_expires_at=timezone.now() + timedelta(seconds=30)
    )
    assert leases_recover() == {}
    assert ImportJob.objects.get(pk=job.pk).status == "running"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_renews_the_lease_and_notices_a_takeover(workspace):
    job = import_job_create(workspace=workspace, kind="profiles", filename="p.csv", content=b"external_id\nN1\n")
    token = lease_take(queryset=ImportJob.objects.filter(pk=job.pk), status="running")
    first = ImportJob.objects.get(pk=job.pk).lease_expires_at
    with lease_heartbeat(model=ImportJob, pk=job.pk, token=token, every=0.2) as beat:
        time.sleep(0.7)
        renewed = ImportJob.objects.get(pk=job.pk).lease_expires_at
        assert renewed > first and not beat.lost
        ImportJob.objects.filter(pk=job.pk).update(lease_token=uuid.uuid4())  # someone took it over
        time.sleep(0.6)
        assert beat.lost


def test_a_job_whose_worker_is_lost_again_and_again_is_failed_not_queued_for_ever(
    workspace, eager_tasks, django_capture_on_commit_callbacks
):
    job = import_job_create(workspace=workspace, kind="profiles", filename="p.csv", content=b"external_id\nN1\n")
    for _ in range(MAX_RECOVERIES - 1):
        ImportJob.objects.filter(pk=job.pk).update(status="running")
        lapse(ImportJob, job.pk)
        # The recovered run is queued; here, it is lost again before it starts.
        ImportJob.objects.filter(pk=job.pk).update(status="pending")
        with django_capture_on_commit_callbacks(execute=False):
            recovery = job_recoverer(
                model=ImportJob,
                requeue={"status": "pending"},
                give_up={"status": "failed", "failure": LOST},
                enqueue=lambda pk: None,  # the broker: this test keeps the job from running
            )
            assert recovery() == 1
    lapse(ImportJob, job.pk, status="running")
    assert leases_recover() == {"imports": 1}
    job.refresh_from_db()
    assert (job.status, job.failure, job.lease_token, job.lease_recoveries) == ("failed", LOST, None, 0)


def test_a_finished_analysis_is_not_computed_again_by_a_redelivered_task(
    workspace, eager_tasks, django_capture_on_commit_callbacks
):
    segment = make_segment(workspace=workspace)
    with django_capture_on_commit_callbacks(execute=True):
        analysis = segment_analysis_request(segment=segment, min_count=1)
    analysis.refresh_from_db()
    assert analysis.status == "ready"
    computed = analysis.computed_at
    from segments.quantification import segment_analysis_run

    segment_analysis_run(segment_id=segment.pk)  # the same task, delivered again
    analysis.refresh_from_db()
    assert (analysis.status, analysis.computed_at) == ("ready", computed)


def test_a_failed_job_is_released_the_one_way_every_kind_shares(workspace):
    """lease_fail: a transient database error queues the job again and raises; a refusal the job
    expects is its message; anything else names only the error's type; the lease is released."""
    from django.core.exceptions import ValidationError
    from django.db import OperationalError

    from core.leases import UNEXPECTED, lease_fail

    job = import_job_create(workspace=workspace, kind="profiles", filename="p.csv", content=b"external_id\nA\n")

    def taken() -> uuid.UUID:
        ImportJob.objects.filter(pk=job.pk).update(status="running")
        token = lease_take(queryset=ImportJob.objects.filter(pk=job.pk))
        assert token is not None
        return token

    token = taken()
    with pytest.raises(OperationalError):
        lease_fail(model=ImportJob, pk=job.pk, token=token, exc=OperationalError("server closed the connection"))
    job.refresh_from_db()
    assert (job.status, job.lease_token, job.failure) == ("pending", None, "")
    token = taken()
    refusal = ValidationError("Line 2: a cell is too long.")
    lease_fail(model=ImportJob, pk=job.pk, token=token, exc=refusal, expected=(ValidationError,))
    job.refresh_from_db()
    assert (job.status, job.lease_token, job.failure) == ("failed", None, "['Line 2: a cell is too long.']")
    token = taken()
    lease_fail(model=ImportJob, pk=job.pk, token=token, exc=KeyError("secret-value"), finished_at=timezone.now())
    job.refresh_from_db()
    assert job.failure == UNEXPECTED.format("KeyError") and "secret-value" not in job.failure
    assert job.finished_at is not None
