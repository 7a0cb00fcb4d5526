from celery import shared_task

from core.tasks import retrying_task_options


@shared_task(**retrying_task_options(minutes=10))
def state_publish_task(workspace_id: int) -> None:
    from accounts.models import Workspace
    from programmatic.publish import state_publish

    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is not None:
        state_publish(workspace=workspace)


@shared_task(acks_late=True, ignore_result=True)
def states_publish_due_task() -> None:
    """Beat, every 5 minutes: every workspace with line items publishes its state again (budgets
    re-planned, people who left the audiences or the consent set gone, identities renewed)."""
    from programmatic.models import LineItem

    for workspace_id in LineItem.objects.values_list("workspace_id", flat=True).distinct().order_by():
        state_publish_task.delay(workspace_id=workspace_id)


@shared_task(acks_late=True, ignore_result=True)
def notices_consume_due_task() -> None:
    """Beat, every minute: each workspace's new notices into its bid days and its ledger."""
    from programmatic.models import LineItem
    from programmatic.notices import notices_consume

    for workspace_id in LineItem.objects.values_list("workspace_id", flat=True).distinct().order_by():
        notices_consume(workspace_id=workspace_id)
