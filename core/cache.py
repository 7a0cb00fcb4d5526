"""Django's Redis cache, without its per-operation costs.

Django's RedisCacheClient makes a new `redis.Redis` for every operation, and each one builds redis-py's
table of reply callbacks (some 170 entries): about a fifth of a millisecond, five times per API request
(the throttle, the token, the membership). This client keeps one `redis.Redis` per connection pool,
which redis-py makes safe to share between threads. `window_count` counts a throttle's window in one
round trip (a pipeline) where `add` then `incr` took three.
"""

from django.core.cache import BaseCache
from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}  # by the id of the pool, which lives as long as this client

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:  # two threads may both make one: the second is kept, both work
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient


def window_count(cache: BaseCache, key: str, timeout: int) -> int:
    """Add one to the counter `key` (created at 0 for `timeout` seconds when missing) and return it:
    one round trip on Redis, `add` then `incr` on any other cache."""
    if isinstance(cache, RedisCache):
        redis_key = cache.make_and_validate_key(key)
        pipe = cache._cache.get_client(redis_key, write=True).pipeline(transaction=False)
        pipe.set(redis_key, 0, ex=timeout, nx=True)
        pipe.incr(redis_key)
        return int(pipe.execute()[1])
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr: this request opens the window
        cache.set(key, 1, timeout=timeout)
        return 1
