from celery import shared_task

from core.tasks import retrying_task_options
from insights.jobs import clv_refresh_due, features_refresh_due, job_run


@shared_task(**retrying_task_options(minutes=55))
def insight_job_run_task(job_id: int) -> None:
    job_run(job_id=job_id)


@shared_task(acks_late=True, ignore_result=True)
def features_refresh_due_task() -> None:
    """Beat, every 15 minutes: the features, then the lifetime values, brought up to date."""
    features_refresh_due()
    clv_refresh_due()
