from celery import shared_task

from campaigns.activation import campaign_deliveries, campaign_handoff
from campaigns.services import campaigns_tick
from campaigns.triggers import events_trigger, pending_sends_run
from config.celery import retrying_task_options


@shared_task(**retrying_task_options(minutes=30))
def campaign_activate_task(campaign_id: int) -> None:
    """Decide the deliveries of an active campaign, then hand them off."""
    campaign_deliveries(campaign_id=campaign_id)
    campaign_handoff_task.delay(campaign_id=campaign_id)


@shared_task(**retrying_task_options(minutes=55))
def campaign_handoff_task(campaign_id: int) -> None:
    campaign_handoff(campaign_id=campaign_id)


@shared_task(acks_late=True, soft_time_limit=50, time_limit=60)
def campaigns_tick_task() -> None:
    campaigns_tick()


@shared_task(**retrying_task_options(minutes=5))
def events_trigger_task(workspace_id: int, event_ids: list[int]) -> None:
    events_trigger(workspace_id=workspace_id, event_ids=event_ids)


@shared_task(**retrying_task_options(minutes=5))
def pending_sends_task() -> None:
    pending_sends_run()


@shared_task(**retrying_task_options(minutes=10))
def rule_evaluate_task(rule_id: int, source: str = "schedule") -> None:
    from campaigns.models import Rule
    from campaigns.rules import rule_run

    rule = Rule.objects.select_related("workspace").filter(pk=rule_id, enabled=True).first()
    if rule is not None:
        rule_run(rule, source=source)


@shared_task(acks_late=True, soft_time_limit=50, time_limit=60)
def rules_due_task() -> None:
    from campaigns.rules import rules_due

    rules_due()
