"""GET /health/: can this process serve? For load balancers, orchestrators and uptime probes.

200 {"status": "ok", "checks": {...}} when the database answers, Redis answers (when REDIS_URL is
configured) and a Celery worker has beaten within HEARTBEAT_MAX_AGE_S; otherwise 503 with
"status": "unavailable" and the failed check named. On the embedded default there is no Redis and
no worker (tasks run in-process), which the checks report as such.

A plain Django view, not a DRF one: no authentication, no throttling, no session. It answers fast:
one `SELECT 1` and at most two Redis round trips, each bounded by a 1 s socket timeout. A failure
is reported by its exception's class only, since the answer is public and a message may name hosts.
"""

import time
from typing import Any

import redis
import structlog
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from config.observability import HEARTBEAT_KEY, HEARTBEAT_MAX_AGE_S, REDIS_TIMEOUT_S

logger = structlog.get_logger(__name__)

OK = "ok"
# "embedded": no worker, tasks run in-process; "not_configured": no REDIS_URL, nothing to reach.
PASSING = {OK, "embedded", "not_configured"}


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not serving"; the class says which
        return {"status": "error", "error": type(exc).__name__}
    return {"status": OK}


def _redis_and_worker() -> tuple[dict[str, Any], dict[str, Any]]:
    eager = settings.CELERY_TASK_ALWAYS_EAGER
    worker: dict[str, Any] = {"status": "embedded"} if eager else {"status": "unknown"}
    if not settings.REDIS_URL:
        return {"status": "not_configured"}, worker
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
    )
    try:
        client.ping()
        beat = None if eager else client.get(HEARTBEAT_KEY)
    except redis.RedisError as exc:
        return {"status": "error", "error": type(exc).__name__}, worker
    finally:
        client.close()
    if eager:
        return {"status": OK}, worker
    if beat is None:
        return {"status": OK}, {"status": "missing"}
    # Clamped: a worker's clock a little ahead of ours is not a beat from the future.
    age = round(max(0.0, time.time() - float(beat)), 1)
    return {"status": OK}, {"status": OK if age <= HEARTBEAT_MAX_AGE_S else "stale", "last_heartbeat_age_s": age}


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    database = _database()
    redis_check, worker = _redis_and_worker()
    checks = {"database": database, "redis": redis_check, "worker": worker}
    failed = [name for name, check in checks.items() if check["status"] not in PASSING]
    if failed:
        logger.warning("health_unavailable", failed=failed)
    return JsonResponse({"status": "unavailable" if failed else OK, "checks": checks}, status=503 if failed else 200)
