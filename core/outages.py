"""A dependency down (the database, Redis, the broker) is an outage, not a bug in a request.

The API answers it 503 `{"detail": ..., "code": "unavailable"}` with `Retry-After`, in JSON like
every other API error (core.api, and config.middleware for what happens before a view); other
pages get a short 503 page. It is logged once per LOG_INTERVAL_S and dependency, with how many
requests it refused meanwhile, so that an outage under load does not flood the logs.
"""

import threading
import time

import redis
import structlog
from django.db import DatabaseError, InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

logger = structlog.get_logger(__name__)

RETRY_AFTER_S = 30
LOG_INTERVAL_S = 60

_lock = threading.Lock()
_last_logged: dict[str, float] = {}
_refused: dict[str, int] = {}


def dependency_of(exc: BaseException) -> str | None:
    """Which dependency `exc` says is down ("database", "redis", "broker"), or None when it is not an outage."""
    if isinstance(exc, OperationalError | InterfaceError):
        return "database"
    if isinstance(exc, DatabaseError) and "connection" in str(exc).lower():
        return "database"
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return "redis"
    if isinstance(exc, BrokerError):
        return "broker"
    return None


def outage_logged(dependency: str, exc: BaseException) -> None:
    """Log the outage, at most once per LOG_INTERVAL_S for each dependency."""
    now = time.monotonic()
    with _lock:
        _refused[dependency] = _refused.get(dependency, 0) + 1
        last = _last_logged.get(dependency)
        if last is not None and now - last < LOG_INTERVAL_S:
            return
        _last_logged[dependency] = now
        refused, _refused[dependency] = _refused[dependency], 0
    logger.error("dependency_unavailable", dependency=dependency, error=type(exc).__name__, refused=refused)


def outage_message(dependency: str) -> str:
    return f"Cible cannot reach its {dependency} at the moment; try again in {RETRY_AFTER_S} seconds."
