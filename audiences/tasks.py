from celery import shared_task
from django.db import OperationalError

from audiences.exports import export_run
from audiences.services import audience_compute, audiences_refresh_due


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=5,
    soft_time_limit=10 * 60,
    time_limit=12 * 60,  # below the 15-minute lease: a run never outlives its lease unnoticed
)
def audience_compute_task(self, segment_id: int, trigger: str = "manual", requested_by_id: int | None = None) -> None:
    audience_compute(segment_id=segment_id, trigger=trigger, requested_by_id=requested_by_id)


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def audiences_refresh_due_task() -> None:
    audiences_refresh_due()


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=30,
    max_retries=5,
    soft_time_limit=20 * 60,
    time_limit=25 * 60,
)
def audience_export_run_task(self, export_id: int) -> None:
    export_run(export_id=export_id)
