from celery import shared_task
from django.conf import settings

from core.tasks import retrying_task_options
from customers.followups import event_handler
from customers.services import import_job_run


@shared_task(**retrying_task_options(minutes=settings.TASK_MAX_SECONDS // 60))
def import_job_run_task(job_id: int) -> None:
    import_job_run(job_id=job_id)


@shared_task(
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
    soft_time_limit=4 * 60,
    time_limit=5 * 60,
)
def event_handler_task(name: str, workspace_id: int, event_ids: list[int]) -> None:
    """One app's follow-up of new events; retried with backoff until it succeeds (handlers are idempotent)."""
    handler = event_handler(name)
    if handler is None:
        raise LookupError(f"No event handler named {name!r}")
    handler(workspace_id=workspace_id, event_ids=event_ids)
