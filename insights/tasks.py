from celery import shared_task

from core.tasks import retrying_task_options
from insights.jobs import features_refresh_due, job_run


@shared_task(**retrying_task_options(minutes=55))
def insight_job_run_task(job_id: int) -> None:
    job_run(job_id=job_id)


@shared_task(acks_late=True, ignore_result=True)
def features_refresh_due_task() -> None:
    features_refresh_due()
