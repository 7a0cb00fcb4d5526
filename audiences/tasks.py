from celery import shared_task

from audiences.exports import export_run
from audiences.services import audience_compute, audience_members_follow, audiences_refresh_due
from core.tasks import retrying_task_options


# The lease is renewed while the run works; the time limit bounds a run that hangs.
@shared_task(**retrying_task_options(minutes=12))
def audience_compute_task(segment_id: int, trigger: str = "manual", requested_by_id: int | None = None) -> None:
    audience_compute(segment_id=segment_id, trigger=trigger, requested_by_id=requested_by_id)


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def audiences_refresh_due_task() -> None:
    audiences_refresh_due()


@shared_task(**retrying_task_options(minutes=25))
def audience_export_run_task(export_id: int) -> None:
    export_run(export_id=export_id)


@shared_task(**retrying_task_options(minutes=5))
def audience_members_follow_task(workspace_id: int, profile_ids: list[int]) -> None:
    audience_members_follow(workspace_id=workspace_id, profile_ids=profile_ids)
