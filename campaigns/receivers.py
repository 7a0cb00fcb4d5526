"""Triggered campaigns hear about new events from the customers app."""

from django.dispatch import receiver

from customers.signals import events_ingested


@receiver(events_ingested, dispatch_uid="campaigns.events_trigger")
def queue_trigger_evaluation(sender, *, workspace_id: int, event_ids: list[int], **kwargs) -> None:
    from campaigns.models import Target
    from campaigns.tasks import events_trigger_task

    # Cheap check first: most workspaces have no triggered campaign running.
    if (
        Target.objects.filter(campaign__workspace_id=workspace_id, campaign__status="active")
        .exclude(trigger_event="")
        .exists()
    ):
        events_trigger_task.delay(workspace_id=workspace_id, event_ids=event_ids)
