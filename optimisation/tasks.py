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


# The names these tasks had in the campaigns app: messages already in the broker when Cible is
# upgraded still run. Kept for one release.
@shared_task(name="campaigns.tasks.rule_evaluate_task", **retrying_task_options(minutes=10))
def rule_evaluate_task_former_name(rule_id: int, source: str = "schedule") -> None:
    rule_evaluate_task(rule_id=rule_id, source=source)


@shared_task(name="campaigns.tasks.rules_due_task", acks_late=True, soft_time_limit=50, time_limit=60)
def rules_due_task_former_name() -> None:
    rules_due()
