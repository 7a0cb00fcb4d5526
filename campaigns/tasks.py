from celery import shared_task

from campaigns.activation import campaign_deliveries, campaign_handoff
from campaigns.services import campaigns_tick
from campaigns.triggers import events_trigger, pending_sends_run
from core.tasks import retrying_task_options


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
def pending_sends_task() -> None:
    pending_sends_run()


# The trigger follow-up of an ingest before follow-ups were queued by customers: messages already
# in the broker when Cible is upgraded still run. Kept for one release.
@shared_task(name="campaigns.tasks.events_trigger_task", **retrying_task_options(minutes=5))
def events_trigger_task_former_name(workspace_id: int, event_ids: list[int]) -> None:
    events_trigger(workspace_id=workspace_id, event_ids=event_ids)
