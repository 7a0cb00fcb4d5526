"""Password guessing on the token endpoint is slowed down by the caller's address and by the
username tried, whether or not the request also carries a valid token."""

import hashlib
from collections.abc import Mapping

from rest_framework.throttling import SimpleRateThrottle

from core.addresses import client_address


class LoginAddressThrottle(SimpleRateThrottle):
    """Attempts from one address (X-Forwarded-For read only from trusted proxies: core.addresses)."""

    scope = "login"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}


class LoginUsernameThrottle(SimpleRateThrottle):
    """Attempts at one username, from any address (a digest: usernames are not kept in the cache)."""

    scope = "login_username"

    def get_cache_key(self, request, view) -> str | None:
        data = getattr(request, "data", None)
        username = str(data.get("username", "")).strip().lower()[:150] if isinstance(data, Mapping) else ""
        if not username:
            return None
        digest = hashlib.sha256(username.encode("utf-8", "replace")).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest}
