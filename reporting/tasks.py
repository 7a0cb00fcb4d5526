from celery import shared_task

from accounts.models import Workspace
from core.tasks import retrying_task_options
from reporting.services import rollup_run, rollups_due


@shared_task(**retrying_task_options(minutes=30))
def rollup_task(workspace_id: int, full: bool = False, reattribute: bool = False) -> dict:
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return {}
    return rollup_run(workspace=workspace, full=full, reattribute=reattribute)


@shared_task(acks_late=True, soft_time_limit=50, time_limit=60)
def rollups_due_task() -> int:
    return rollups_due()


@shared_task(**retrying_task_options(minutes=30))
def report_job_task(job_id: int) -> None:
    from reporting.reports import report_job_run

    report_job_run(job_id=job_id)
