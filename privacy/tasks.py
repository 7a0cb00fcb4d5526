from celery import shared_task
from django.db import OperationalError

from privacy.destinations import removal_notice_send
from privacy.retention import retention_purge, retention_workspaces


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=30,
    max_retries=5,
    soft_time_limit=240,
    time_limit=300,
)
def removal_notice_send_task(notice_id: int) -> None:
    removal_notice_send(notice_id=notice_id)


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=60,
    max_retries=5,
    soft_time_limit=240,
    time_limit=300,
)
def retention_purge_task(workspace_id: int) -> None:
    """One bounded batch; queues itself again while more is left."""
    _, more = retention_purge(workspace_id=workspace_id)
    if more:
        retention_purge_task.delay(workspace_id=workspace_id)


@shared_task(acks_late=True, soft_time_limit=60, time_limit=120)
def retention_purge_due_task() -> None:
    """Daily: start the purge of every workspace that has a retention policy."""
    for workspace_id in retention_workspaces():
        retention_purge_task.delay(workspace_id=workspace_id)
