"""The API's rate throttles count requests per fixed window with the cache's atomic increment."""

import threading
import time
import uuid

from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIRequestFactory

from core.throttles import ScopedThrottle, UserThrottle
from tests.factories import make_user


class TenPerDay(UserThrottle):
    rate = "10/day"


class View:
    throttle_scope = "ingest"


def _request(user=None, address: str = "127.0.0.1"):
    request = APIRequestFactory().get("/", REMOTE_ADDR=address)
    request.user = user
    return request


def _counter(throttle, request) -> str:
    """The key of the current window's counter (emptied first: the cache outlives a test database)."""
    return f"{throttle.get_cache_key(request, View())}:{int(time.time() // throttle.duration)}"


def _fresh_user(workspace):
    user = make_user(workspace=workspace)
    cache.delete(_counter(TenPerDay(), _request(user)))
    return user


def test_a_user_gets_the_rate_and_no_more_then_a_wait_until_the_window_ends(workspace):
    user = _fresh_user(workspace)
    answers = [TenPerDay().allow_request(_request(user), View()) for _ in range(12)]
    assert answers == [True] * 10 + [False] * 2
    throttle = TenPerDay()
    assert throttle.allow_request(_request(user), View()) is False
    assert 0 < throttle.wait() <= 86_400
    # Another user has a counter of their own.
    assert TenPerDay().allow_request(_request(_fresh_user(workspace)), View()) is True


def test_concurrent_requests_are_all_counted(workspace):
    """Twenty requests at once with ten allowed: exactly ten pass (a read-modify-write of a list of
    request times lets several through, since each reads the list before any writes it)."""
    user = _fresh_user(workspace)
    start = threading.Barrier(20)
    answers: list[bool] = []

    def call() -> None:
        start.wait()
        answers.append(TenPerDay().allow_request(_request(user), View()))

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [False] * 10 + [True] * 10


def test_the_scope_and_the_rate_still_come_from_the_view_and_the_settings():
    class Anonymous:
        is_authenticated = False

    throttle = ScopedThrottle()
    request = _request(Anonymous(), address=f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.1")
    assert throttle.allow_request(request, View()) is True
    assert throttle.scope == "ingest" and throttle.rate == settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["ingest"]
    assert cache.get(_counter(throttle, request)) == 1
