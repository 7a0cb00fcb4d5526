"""Celery queues: long jobs on their own queue, so a 50-minute hand-off never delays a 1-minute tick.

- `<base>`        short work: audience computations, ingest follow-ups, removal notices;
- `<base>-long`   long jobs: activations and hand-offs, exports, imports, analyses, report files,
                  roll-ups and the rule evaluations that run them, retention batches;
- `<base>-ticks`  the periodic ticks beat sends (due refreshes, campaign ticks, purges).

The three are declared (`task_queues`), so a worker started as Celery users start one,
`celery -A config worker`, consumes all three; `-Q` still gives one pool per queue (README,
"Scaling out"). /health/ says per queue whether a worker consumes it (core.workers).
"""

from kombu import Exchange, Queue

from core.workers import queue_names

LONG_TASKS = (
    "audiences.tasks.audience_export_run_task",
    "campaigns.tasks.campaign_activate_task",
    "campaigns.tasks.campaign_handoff_task",
    "campaigns.tasks.channel_preferences_compute_task",
    "customers.tasks.import_job_run_task",
    "insights.tasks.insight_job_run_task",
    "privacy.tasks.retention_purge_task",
    "optimisation.tasks.rule_evaluate_task",
    "reporting.tasks.report_job_task",
    "reporting.tasks.rollup_task",
    "segments.tasks.segment_analysis_run_task",
)
TICK_TASKS = (
    "audiences.tasks.audiences_refresh_due_task",
    "campaigns.tasks.campaigns_tick_task",
    "campaigns.tasks.channel_preferences_due_task",
    "campaigns.tasks.pending_sends_task",
    "insights.tasks.features_refresh_due_task",
    "optimisation.tasks.rules_due_task",
    "privacy.tasks.retention_purge_due_task",
    "programmatic.tasks.notices_consume_due_task",
    "programmatic.tasks.states_publish_due_task",
    "reporting.tasks.rollups_due_task",
)


def task_queues(base: str) -> list[Queue]:
    """The queues, each on its own direct exchange and routing key (as Celery creates a missing one)."""
    return [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in queue_names(base).values()]


def task_routes(base: str) -> dict[str, dict[str, str]]:
    names = queue_names(base)
    return {
        **{task: {"queue": names["long"]} for task in LONG_TASKS},
        **{task: {"queue": names["ticks"]} for task in TICK_TASKS},
    }
