"""A worker killed (SIGKILL) in the middle of a computation, with real processes; a stale run."""

import os
import signal
import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from audiences.models import Audience, AudienceMember, AudienceRun
from audiences.services import audience_compute, audience_lease_take
from audiences.tasks import audience_compute_task
from config.queues import queue_names
from core.leases import LEASE
from segments.services import segment_create
from tests.conftest import ROOT, start_worker, stop_worker, wait_for
from tests.factories import make_profile

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
QUEUE = "cible-test-kill"


def all_queues() -> str:
    """The kill queue, and the test queues that a recovered job goes to."""
    return ",".join([QUEUE, *queue_names(settings.CELERY_TASK_DEFAULT_QUEUE).values()])


def test_a_worker_killed_mid_computation_leaves_the_previous_version_current_and_a_later_run_completes(workspace):
    for n in range(5):
        make_profile(workspace=workspace, external_id=f"L{n}", city="Lyon")
    segment = segment_create(
        workspace=workspace, name="Lyon", definition={"field": "city", "op": "eq", "value": "Lyon"}
    )
    first = audience_compute(segment_id=segment.pk)
    assert (first.version, first.size) == (1, 5)
    make_profile(workspace=workspace, external_id="L5", city="Lyon")

    db = connection.settings_dict
    worker = start_worker(db["NAME"], QUEUE, ROOT / ".pytest-worker-kill.log")
    blocker = psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"], autocommit=False
    )
    try:
        # Hold the members table so the worker's INSERT ... SELECT waits: it is then mid-computation
        # (lease taken, version 2 handed out, run recorded) when it is killed.
        blocker.execute(f"LOCK TABLE {AudienceMember._meta.db_table} IN EXCLUSIVE MODE")
        audience_compute_task.apply_async(kwargs={"segment_id": segment.pk, "trigger": "manual"}, queue=QUEUE)
        wait_for(lambda: AudienceRun.objects.filter(audience__segment=segment, version=2, status="running").exists())
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        blocker.rollback()
        blocker.close()
        stop_worker(worker)

    audience = Audience.objects.get(segment=segment)
    assert (audience.current_version, audience.size, audience.status) == (1, 5, "computing")
    assert AudienceMember.objects.filter(audience=audience, version=1).count() == 5
    assert audience.lease_expires_at <= timezone.now() + LEASE  # a minute at most, no longer renewed
    assert audience_compute(segment_id=segment.pk) is None  # the dead worker's lease still blocks...

    # ...until it lapses: a new worker takes the job back by itself, no further request.
    killed_at = time.monotonic()
    worker = start_worker(db["NAME"], all_queues(), ROOT / ".pytest-worker-kill.log")
    try:
        audience = wait_for(
            lambda: Audience.objects.filter(pk=audience.pk, status="ready", current_version__gt=2).first(),
            timeout=120,
            interval=0.5,
        )
    finally:
        stop_worker(worker)
    assert time.monotonic() - killed_at < 120
    assert audience.size == 6
    runs = list(AudienceRun.objects.filter(audience=audience).order_by("version").values_list("status", "trigger"))
    assert runs == [("succeeded", "manual"), ("failed", "manual"), ("succeeded", "recovery")]
    lost = AudienceRun.objects.get(audience=audience, version=2)
    assert "worker was lost" in lost.error and lost.finished_at is not None
    assert set(AudienceMember.objects.filter(audience=audience).values_list("version", flat=True)) == {
        1,
        audience.current_version,
    }
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST


def test_a_stale_run_finishing_while_the_run_that_took_over_computes_changes_nothing_of_it(workspace):
    for n in range(3):
        make_profile(workspace=workspace, external_id=f"S{n}", city="Lyon")
    segment = segment_create(
        workspace=workspace, name="Lyon", definition={"field": "city", "op": "eq", "value": "Lyon"}
    )
    assert audience_compute(segment_id=segment.pk).version == 1
    make_profile(workspace=workspace, external_id="S3", city="Lyon")
    audience = Audience.objects.get(segment=segment)

    db = connection.settings_dict
    blocker = psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"], autocommit=False
    )
    outcome: dict = {}

    def stale_run():
        try:
            outcome["run"] = audience_compute(segment_id=segment.pk)
        finally:
            connections.close_all()

    blocker.execute(f"LOCK TABLE {AudienceMember._meta.db_table} IN EXCLUSIVE MODE")
    thread = threading.Thread(target=stale_run)
    thread.start()
    try:
        wait_for(lambda: AudienceRun.objects.filter(audience=audience, version=2, status="running").exists())
        # Its worker went silent long enough: another run takes the lease over and is computing.
        with transaction.atomic():
            Audience.objects.filter(pk=audience.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
            token, version = audience_lease_take(audience_id=audience.pk)
        assert version == 3
    finally:
        blocker.rollback()  # the stale run goes on and finishes now
        blocker.close()
        thread.join(timeout=60)
    assert outcome["run"].status == "superseded"
    audience.refresh_from_db()
    # The stale run switched nothing live and left the new holder's lease alone.
    assert (audience.current_version, audience.size, audience.status) == (1, 3, "computing")
    assert (audience.lease_token, audience.lease_expires_at > timezone.now()) == (token, True)
    assert not AudienceMember.objects.filter(audience=audience, version=2).exists()
