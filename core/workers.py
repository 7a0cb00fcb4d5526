"""What the Celery workers are doing, as every app may ask it: which queues have a worker, how long
the oldest message of each has waited, and what to tell a person whose job is still queued.

The Celery queues (config.queues routes the tasks): `<base>` for short work, `<base>-long` for long
jobs, `<base>-ticks` for beat's ticks. A worker writes, every HEARTBEAT_INTERVAL_S, the time under
HEARTBEAT_KEY and under the key of each queue it consumes (config.observability); every message
sent carries the time it was sent in its `cible_sent_at` header. Redis (the broker) holds a queue
as a list, the oldest message at its right end.
"""

import json
import time
from dataclasses import dataclass
from datetime import datetime

import redis
from django.conf import settings
from django.contrib import admin
from django.utils import timezone

HEARTBEAT_KEY = "cible:worker:heartbeat"
HEARTBEAT_INTERVAL_S = 15
HEARTBEAT_MAX_AGE_S = 60
# Short, so that a Redis outage never blocks the heartbeat thread, the health check or a page long.
REDIS_TIMEOUT_S = 1.0
SENT_AT_HEADER = "cible_sent_at"

QUEUE_PURPOSES = {
    "default": "short jobs",
    "long": "long jobs (imports, exports, analyses, reports, activations)",
    "ticks": "periodic ticks",
}


def queue_names(base: str | None = None) -> dict[str, str]:
    base = base or settings.CELERY_TASK_DEFAULT_QUEUE
    return {"default": base, "long": f"{base}-long", "ticks": f"{base}-ticks"}


def queue_heartbeat_key(queue: str) -> str:
    return f"cible:worker:queue:{queue}"


def queue_of_task(task_name: str) -> str:
    route = settings.CELERY_TASK_ROUTES.get(task_name, {})
    return route.get("queue", settings.CELERY_TASK_DEFAULT_QUEUE)


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
    )


@dataclass
class QueueState:
    name: str
    purpose: str
    consumed: bool  # a worker consuming it has beaten within HEARTBEAT_MAX_AGE_S
    last_worker_age_s: float | None  # since such a worker last beat; None: never
    waiting: int  # messages not yet taken
    oldest_wait_s: float | None  # how long the oldest of them has waited

    def as_dict(self) -> dict:
        return {
            "consumed": self.consumed,
            "last_worker_age_s": self.last_worker_age_s,
            "waiting": self.waiting,
            "oldest_wait_s": self.oldest_wait_s,
        }


def _sent_at(message: bytes | None) -> float | None:
    if not message:
        return None
    try:
        sent = json.loads(message).get("headers", {}).get(SENT_AT_HEADER)
        return float(sent) if sent is not None else None
    except (ValueError, TypeError, AttributeError):
        return None


def queue_states(client: redis.Redis | None = None) -> list[QueueState]:
    """Every queue's state, read from Redis in one round trip (RedisError when it does not answer)."""
    client = client or redis_client()
    names = queue_names()
    pipe = client.pipeline(transaction=False)
    for queue in names.values():
        pipe.get(queue_heartbeat_key(queue))
        pipe.llen(queue)
        pipe.lindex(queue, -1)
    answers = pipe.execute()
    now = time.time()
    states = []
    for index, (role, queue) in enumerate(names.items()):
        beat, waiting, oldest = answers[3 * index : 3 * index + 3]
        age = round(max(0.0, now - float(beat)), 1) if beat is not None else None
        sent = _sent_at(oldest)
        states.append(
            QueueState(
                name=queue,
                purpose=QUEUE_PURPOSES[role],
                consumed=age is not None and age <= HEARTBEAT_MAX_AGE_S,
                last_worker_age_s=age,
                waiting=int(waiting or 0),
                oldest_wait_s=round(max(0.0, now - sent), 1) if sent is not None and waiting else None,
            )
        )
    return states


_recent: tuple[float, list[QueueState]] | None = None
RECENT_S = 5.0


def _recent_queue_states() -> list[QueueState]:
    """queue_states, read at most once every RECENT_S: an admin list of 100 queued jobs asks Redis
    once, not once per row."""
    global _recent
    now = time.monotonic()
    if _recent is None or now - _recent[0] > RECENT_S:
        _recent = (now, queue_states())
    return _recent[1]


def queue_states_forget() -> None:
    """Read the queues afresh next time (after a worker starts or stops, in tests)."""
    global _recent
    _recent = None


def _minutes(seconds: float) -> str:
    minutes = int(seconds // 60)
    return "less than a minute" if minutes < 1 else f"{minutes} min"


def waiting_note(*, task_name: str, since: datetime | None) -> str:
    """What a person sees for a job still queued: how long it has waited and, when no worker
    consumes its queue, that nothing will take it ("queued for 12 min: no worker takes long jobs")."""
    waited = f"queued for {_minutes((timezone.now() - since).total_seconds())}" if since else "queued"
    if settings.CELERY_TASK_ALWAYS_EAGER or not settings.REDIS_URL:
        return waited
    queue = queue_of_task(task_name)
    try:
        state = next((s for s in _recent_queue_states() if s.name == queue), None)
    except redis.RedisError:
        return f"{waited}: the task queue (Redis) does not answer"
    if state is not None and not state.consumed:
        return f"{waited}: no worker takes {state.purpose.split(' (')[0]}"
    return waited


class QueuedJobAdminMixin:
    """For the admin of a job model (a core.leases.LeasedJob): `status_shown`, the status, or for a
    job still queued how long it has waited and whether any worker takes it."""

    @admin.display(description="Status", ordering="status")
    def status_shown(self, obj) -> str:
        if obj.status != getattr(obj, "lease_queued_status", "queued"):
            return obj.get_status_display()
        since = getattr(obj, "created_at", None) or getattr(obj, "requested_at", None)
        return waiting_note(task_name=obj.lease_task, since=since)
