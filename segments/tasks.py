from celery import shared_task
from django.db import OperationalError

from segments.quantification import segment_analysis_run


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=30,
    max_retries=5,
    soft_time_limit=10 * 60,
    time_limit=12 * 60,
)
def segment_analysis_run_task(self, segment_id: int) -> None:
    segment_analysis_run(segment_id=segment_id)
