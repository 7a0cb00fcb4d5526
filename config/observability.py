"""Celery's side of observability: the task's log context, the worker's logging, the worker heartbeat.

Imported by config.celery, so every process that loads the Celery app (web, worker, beat) connects
these receivers; none of them reads Django settings before a signal fires.
"""

import logging.config
import threading
import time
from contextvars import Token
from typing import Any

import redis
import structlog
from celery import signals

from core.workers import (
    HEARTBEAT_INTERVAL_S,
    HEARTBEAT_KEY,
    REDIS_TIMEOUT_S,
    SENT_AT_HEADER,
    queue_heartbeat_key,
)

# A worker writes the time (Unix seconds) under HEARTBEAT_KEY, and under the key of each queue it
# consumes, every HEARTBEAT_INTERVAL_S; /health/ reads them and answers 503 when they are older than
# HEARTBEAT_MAX_AGE_S, i.e. after about four missed beats (core.workers).

logger = structlog.get_logger(__name__)

_task_tokens: dict[str, Any] = {}
_heartbeat_stop = threading.Event()


@signals.setup_logging.connect
def _worker_logging(**kwargs: Any) -> None:
    """A worker and beat log as the web processes do (settings.LOGGING), instead of Celery's own format."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


@signals.task_prerun.connect
def _bind_task_context(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if not getattr(task.request, "is_eager", False):
        # A worker thread runs one task after another: nothing of the previous one may remain.
        # An eager task (the embedded default) runs inside a request and keeps its request_id.
        structlog.contextvars.clear_contextvars()
    tokens: dict[str, Token[Any]] = dict(structlog.contextvars.bind_contextvars(task_id=task_id, task_name=task.name))
    _task_tokens[task_id or ""] = tokens


@signals.task_postrun.connect
def _clear_task_context(task_id: str | None = None, **kwargs: Any) -> None:
    tokens = _task_tokens.pop(task_id or "", None)
    try:
        if tokens:
            # Back to the context from before the task: the request's, for an eager task.
            structlog.contextvars.reset_contextvars(**tokens)
    except ValueError:  # bound in another context (thread); nothing of ours to restore there
        structlog.contextvars.unbind_contextvars("task_id", "task_name")


@signals.before_task_publish.connect
def _stamp_sent_at(headers: dict | None = None, **kwargs: Any) -> None:
    """Every message carries when it was sent: /health/ tells how long a queue's oldest has waited."""
    if headers is not None:
        headers[SENT_AT_HEADER] = f"{time.time():.3f}"


def _heartbeat_loop(redis_url: str, queues: list[str]) -> None:
    from django.db import close_old_connections

    from core.leases import leases_recover

    client = redis.Redis.from_url(redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S)
    while True:
        try:
            now = f"{time.time():.3f}"
            pipe = client.pipeline(transaction=False)
            pipe.set(HEARTBEAT_KEY, now)
            for queue in queues:
                pipe.set(queue_heartbeat_key(queue), now)
            pipe.execute()
        except redis.RedisError as exc:
            logger.warning("worker_heartbeat_failed", error=type(exc).__name__)
        # Every worker also takes back the leases of jobs whose worker went silent (core.leases):
        # a killed worker's job runs again within about a minute, with no request and no beat.
        close_old_connections()  # this thread's connection, like a request's
        leases_recover()
        if _heartbeat_stop.wait(HEARTBEAT_INTERVAL_S):
            return


@signals.worker_ready.connect
def _start_heartbeat(**kwargs: Any) -> None:
    """Sent once, in the worker's main process when it starts consuming: one beat per worker, not per task."""
    from django.conf import settings

    if not settings.REDIS_URL:
        return
    consumer = kwargs.get("sender")
    task_consumer = getattr(consumer, "task_consumer", None)
    queues = [queue.name for queue in getattr(task_consumer, "queues", [])]
    _heartbeat_stop.clear()
    threading.Thread(
        target=_heartbeat_loop, args=(settings.REDIS_URL, queues), name="cible-worker-heartbeat", daemon=True
    ).start()


@signals.worker_shutdown.connect
def _stop_heartbeat(**kwargs: Any) -> None:
    # The key stays: its age tells /health/ how long ago the last worker stopped.
    _heartbeat_stop.set()
