from celery import shared_task

from campaigns.activation import campaign_deliveries, campaign_handoff
from campaigns.services import campaigns_tick
from campaigns.triggers import pending_sends_run
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


@shared_task(**retrying_task_options(minutes=20))
def channel_preferences_compute_task(workspace_id: int) -> None:
    from accounts.models import Workspace
    from campaigns.preferences import channel_preferences_compute

    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is not None:
        channel_preferences_compute(workspace=workspace)


@shared_task(acks_late=True, soft_time_limit=50, time_limit=60)
def channel_preferences_due_task() -> None:
    from campaigns.preferences import channel_preferences_due

    channel_preferences_due()
