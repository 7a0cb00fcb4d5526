from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from customers.services import import_job_run


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=5,
    soft_time_limit=settings.TASK_MAX_SECONDS - 60,
    time_limit=settings.TASK_MAX_SECONDS,
)
def import_job_run_task(self, job_id: int) -> None:
    import_job_run(job_id=job_id)
