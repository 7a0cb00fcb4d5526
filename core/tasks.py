"""Options shared by Cible's Celery tasks."""

from celery import shared_task
from django.db import OperationalError


def retrying_task_options(*, minutes: int) -> dict:
    """Options of a task that retries transient database errors with backoff, within a time limit.

    The soft limit leaves the task a minute to record why it stopped; both stay
    below CELERY_BROKER_TRANSPORT_OPTIONS' visibility timeout.
    """
    return {
        "acks_late": True,
        "autoretry_for": (OperationalError,),
        "retry_backoff": 30,
        "retry_backoff_max": 600,
        "max_retries": 5,
        "soft_time_limit": minutes * 60 - 60,
        "time_limit": minutes * 60,
    }


@shared_task(acks_late=True, ignore_result=True, soft_time_limit=10 * 60, time_limit=11 * 60)
def table_analyze_task(table: str) -> None:
    """Refresh the planner's statistics of a table after a bulk load (core.statistics)."""
    from core.statistics import table_analyze

    table_analyze(table=table)
