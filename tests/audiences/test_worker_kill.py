"""A worker killed (SIGKILL) in the middle of a computation, with real processes."""

import os
import signal
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from audiences.models import Audience, AudienceMember, AudienceRun
from audiences.services import audience_compute
from audiences.tasks import audience_compute_task
from segments.services import segment_create
from tests.conftest import ROOT, start_worker, stop_worker, wait_for
from tests.factories import make_profile

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
QUEUE = "cible-test-kill"


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
    assert audience.lease_expires_at > timezone.now()  # the dead worker's lease still blocks...
    assert audience_compute(segment_id=segment.pk) is None

    # ...until it expires; then a new worker takes over and completes.
    Audience.objects.filter(pk=audience.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    worker = start_worker(db["NAME"], QUEUE, ROOT / ".pytest-worker-kill.log")
    try:
        audience_compute_task.apply_async(kwargs={"segment_id": segment.pk, "trigger": "manual"}, queue=QUEUE)
        audience = wait_for(
            lambda: Audience.objects.filter(pk=audience.pk, status="ready", current_version=3).first(), timeout=60
        )
    finally:
        stop_worker(worker)
    assert audience.size == 6
    runs = dict(AudienceRun.objects.filter(audience=audience).values_list("version", "status"))
    assert runs == {1: "succeeded", 2: "failed", 3: "succeeded"}
    assert set(AudienceMember.objects.filter(audience=audience).values_list("version", flat=True)) == {1, 3}
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST
