from celery import shared_task
from django.conf import settings

from config.celery import retrying_task_options
from customers.services import import_job_run


@shared_task(**retrying_task_options(minutes=settings.TASK_MAX_SECONDS // 60))
def import_job_run_task(job_id: int) -> None:
    import_job_run(job_id=job_id)
