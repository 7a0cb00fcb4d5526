from celery import shared_task

from core.tasks import retrying_task_options
from segments.quantification import segment_analysis_run


@shared_task(**retrying_task_options(minutes=12))
def segment_analysis_run_task(segment_id: int) -> None:
    segment_analysis_run(segment_id=segment_id)
