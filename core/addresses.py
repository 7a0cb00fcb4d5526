"""The address a request comes from, trusting forwarded headers only as far as configured.

`X-Forwarded-For` is written by whoever sends the request: read as is, rotating it would give an
attacker a new address for every password guess. Only the proxies in front of Cible (their number
set by CIBLE_TRUSTED_PROXIES, none by default) append to it truthfully, so the client's address is
the one the outermost trusted proxy saw: with n trusted proxies, the n-th address from the right
of the header; with none, the connection's own address (REMOTE_ADDR). The API's throttles (DRF's
NUM_PROXIES), the admin login's lockout and its access log all read it from here.
"""

from django.conf import settings


def client_address(request) -> str:
    remote = request.META.get("REMOTE_ADDR", "") or ""
    proxies = settings.CIBLE_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if not proxies or not forwarded:
        return remote
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if not hops:
        return remote
    return hops[-min(proxies, len(hops))]
