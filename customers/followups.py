"""What other apps do with new events, after the ingest has committed and outside the request.

Apps register a handler by name in their AppConfig.ready (campaigns: triggers; reporting:
clicks on deliveries). Once the transaction that stored new events commits, one Celery task
per handler is queued; each task retries on failure with backoff, and handlers are
idempotent (set-based inserts that ignore conflicts), so a handler that fails once runs
again and the ingest response never depends on it. Payloads carry ids only.
"""

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

# name -> handler(*, workspace_id: int, event_ids: list[int])
Handler = Callable[..., object]
_handlers: dict[str, Handler] = {}


def event_handler_register(*, name: str, handler: Handler) -> None:
    _handlers[name] = handler


def event_handler_unregister(*, name: str) -> None:
    _handlers.pop(name, None)


def event_handler(name: str) -> Handler | None:
    return _handlers.get(name)


def events_ingested(*, workspace_id: int, event_ids: list[int]) -> None:
    """Queue every registered handler for these new events (called on commit)."""
    from customers.tasks import event_handler_task  # the task module imports this one

    for name in sorted(_handlers):
        kwargs = {"name": name, "workspace_id": workspace_id, "event_ids": event_ids}
        try:
            if event_handler_task.app.conf.task_always_eager:
                # Embedded mode: in-process, with the task's own retries, never raising here.
                outcome = event_handler_task.apply(kwargs=kwargs, throw=False)
                if outcome.failed():
                    raise outcome.result
            else:
                event_handler_task.delay(**kwargs)
        except Exception:
            # The events are stored and the request succeeded; say loudly that this follow-up
            # could not be queued (broker unreachable) or kept failing in-process.
            logger.exception("Follow-up %s of %d new events of workspace %s failed", name, len(event_ids), workspace_id)
