"""API throttles that count, in fixed windows, instead of keeping every request's time.

DRF's SimpleRateThrottle reads, edits and writes back the list of a caller's request times on
every request: at 1,200 requests a minute that is a list of 1,200 floats through the cache twice
per request, and two concurrent requests can both read the list before either writes it (so both
pass). Here a request adds one to the counter of the current window (`rate`'s period: a minute
for "1200/minute") with the cache's atomic `incr`: one round trip of a few bytes on Redis (core.cache), and no
lost update. The price of fixed windows is the burst at a boundary: a caller may make up to twice the
rate across the end of one window and the start of the next. `wait()` is the time until the
window ends, which DRF sends as `Retry-After`.
"""

import time

from rest_framework import throttling

from core.cache import window_count


class WindowRateThrottle(throttling.SimpleRateThrottle):
    """Fixed-window counting under any of DRF's rate throttles (same scopes, rates and cache keys):
    listed after DRF's class, e.g. `class UserThrottle(UserRateThrottle, WindowRateThrottle)`, so
    that DRF's class still picks the key and the rate and this one counts."""

    num_requests: int
    duration: int

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = time.time()
        window = int(now // self.duration)
        self.window_ends_at = (window + 1) * self.duration
        # Kept a little past the window's end: a clock a little behind still finds the counter.
        count = window_count(self.cache, f"{key}:{window}", self.duration + 5)
        self.now = now
        return count <= self.num_requests

    def wait(self) -> float | None:
        remaining = getattr(self, "window_ends_at", None)
        return None if remaining is None else max(0.0, remaining - time.time())


class AnonThrottle(throttling.AnonRateThrottle, WindowRateThrottle):
    pass


class UserThrottle(throttling.UserRateThrottle, WindowRateThrottle):
    pass


class ScopedThrottle(throttling.ScopedRateThrottle, WindowRateThrottle):
    pass
