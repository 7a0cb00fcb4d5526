from celery import shared_task

from core.tasks import retrying_task_options
from optimisation.models import Rule
from optimisation.rules import rule_run, rules_due


@shared_task(**retrying_task_options(minutes=10))
def rule_evaluate_task(rule_id: int, source: str = "schedule") -> None:
    rule = Rule.objects.select_related("workspace").filter(pk=rule_id, enabled=True).first()
    if rule is not None:
        rule_run(rule=rule, source=source)


@shared_task(acks_late=True, soft_time_limit=50, time_limit=60)
def rules_due_task() -> None:
    rules_due()
