"""Health for load balancers, orchestrators and uptime probes.

- GET /health/live/ (liveness): the process answers. Always 200 while it can answer at all: a
  dependency down is no reason to restart the web process.
- GET /health/ (readiness): can this process serve? 200 {"status": "ok", "checks": {...}} when the
  database answers, Redis answers (when REDIS_URL is configured), a Celery worker has beaten within
  HEARTBEAT_MAX_AGE_S, and every queue has a worker whose oldest waiting message is younger than
  CIBLE_QUEUE_MAX_WAIT_SECONDS; otherwise 503 with "status": "unavailable" and the failed checks named.
  On the embedded default there is no Redis and no worker (tasks run in-process), which the checks
  report as such.

Plain Django views, not DRF ones: no authentication, no throttling, no session. Every check is bounded:
the database is asked on a connection of its own, in a thread the view waits at most
DATABASE_TIMEOUT_S for (a server that accepts connections and never answers would otherwise hold
the probe for minutes); Redis round trips have a 1 s socket timeout. A failure is reported by its
exception's class only, since the answer is public and a message may name hosts. An unavailable
answer is logged once per minute at most (core.outages).
"""

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import psycopg
import redis
import structlog
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from core.workers import HEARTBEAT_KEY, HEARTBEAT_MAX_AGE_S, queue_states, redis_client

logger = structlog.get_logger(__name__)

OK = "ok"
# "embedded": no worker, tasks run in-process; "not_configured": no REDIS_URL, nothing to reach.
PASSING = {OK, "embedded", "not_configured"}
DATABASE_TIMEOUT_S = 3
LOG_INTERVAL_S = 60

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cible-health")
_pending: Future | None = None
_pending_lock = threading.Lock()
_last_logged: dict[tuple[str, ...], float] = {}


def _postgres_select_one() -> None:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params["connect_timeout"] = DATABASE_TIMEOUT_S
    params["options"] = f"{params.get('options', '')} -c statement_timeout={DATABASE_TIMEOUT_S * 1000}".strip()
    # A separate connection: the request's own could be the one stuck on a frozen server.
    with psycopg.connect(**params) as conn:
        conn.execute("SELECT 1").fetchone()


def _database() -> dict[str, Any]:
    global _pending
    if connection.vendor != "postgresql":  # SQLite: a local file, answered at once
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()
        except Exception as exc:
            return {"status": "error", "error": type(exc).__name__}
        return {"status": OK}
    with _pending_lock:
        if _pending is not None and not _pending.done():
            # The previous check still waits on the server: no second thread piles up behind it.
            return {"status": "error", "error": "Timeout"}
        _pending = future = _executor.submit(_postgres_select_one)
    try:
        future.result(timeout=DATABASE_TIMEOUT_S)
    except FutureTimeout:
        return {"status": "error", "error": "Timeout"}
    except Exception as exc:  # any failure means "not serving"; the class says which
        return {"status": "error", "error": type(exc).__name__}
    return {"status": OK}


def _redis_worker_and_queues() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    eager = settings.CELERY_TASK_ALWAYS_EAGER
    worker: dict[str, Any] = {"status": "embedded"} if eager else {"status": "unknown"}
    queues: dict[str, Any] = {"status": "embedded"} if eager else {"status": "unknown"}
    if not settings.REDIS_URL:
        return {"status": "not_configured"}, worker, queues
    client = redis_client()
    try:
        client.ping()
        beat = None if eager else client.get(HEARTBEAT_KEY)
        states = [] if eager else queue_states(client)
    except redis.RedisError as exc:
        return {"status": "error", "error": type(exc).__name__}, worker, queues
    finally:
        client.close()
    if eager:
        return {"status": OK}, worker, queues
    if beat is None:
        worker = {"status": "missing"}
    else:
        # Clamped: a worker's clock a little ahead of ours is not a beat from the future.
        age = round(max(0.0, time.time() - float(beat)), 1)
        worker = {"status": OK if age <= HEARTBEAT_MAX_AGE_S else "stale", "last_heartbeat_age_s": age}
    limit = settings.CIBLE_QUEUE_MAX_WAIT_SECONDS
    per_queue = {}
    for state in states:
        if not state.consumed:
            verdict = "no_worker"
        elif state.oldest_wait_s is not None and state.oldest_wait_s > limit:
            verdict = "backlog"
        else:
            verdict = OK
        per_queue[state.name] = {"status": verdict, "purpose": state.purpose, **state.as_dict()}
    failed = sorted(name for name, queue in per_queue.items() if queue["status"] != OK)
    queues = {"status": OK if not failed else "error", "max_wait_s": limit, "queues": per_queue}
    if failed:
        queues["failed"] = failed
    return {"status": OK}, worker, queues


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    database = _database()
    redis_check, worker, queues = _redis_worker_and_queues()
    checks = {"database": database, "redis": redis_check, "worker": worker, "queues": queues}
    failed = [name for name, check in checks.items() if check["status"] not in PASSING]
    # Logged when what fails changes, and once per LOG_INTERVAL_S while it lasts: not on every probe.
    if failed and time.monotonic() - _last_logged.get(tuple(failed), -LOG_INTERVAL_S) >= LOG_INTERVAL_S:
        _last_logged[tuple(failed)] = time.monotonic()
        logger.warning("health_unavailable", failed=failed)
    return JsonResponse({"status": "unavailable" if failed else OK, "checks": checks}, status=503 if failed else 200)


@never_cache
@require_safe
def liveness(request: HttpRequest) -> JsonResponse:
    """The process answers: no dependency is asked."""
    return JsonResponse({"status": OK})
