"""Clicks come in as events that name the delivery they came from (`properties.touch_id`)."""

from django.dispatch import receiver

from customers.signals import events_ingested


@receiver(events_ingested, dispatch_uid="reporting.clicks_record")
def record_clicks(sender, *, workspace_id: int, event_ids: list[int], **kwargs) -> None:
    from reporting.services import clicks_record

    clicks_record(workspace_id=workspace_id, event_ids=event_ids)
