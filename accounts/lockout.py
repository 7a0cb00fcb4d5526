"""Sign-in lockouts, and how a locked-out person is told.

Two locks, both for the cool-off time (CIBLE_LOGIN_COOLOFF_MINUTES):
- one (username, address) pair after CIBLE_LOGIN_FAILURE_LIMIT failures (django-axes), so that an
  attacker guessing one person's password does not lock that person out from elsewhere;
- one address after CIBLE_LOGIN_ADDRESS_FAILURE_LIMIT failures across any usernames (password
  spraying: a few guesses at each of many accounts), counted here in the cache.
Attempts made while locked are refused without being counted, so they never extend the lock
(an attacker could otherwise keep a real user out for ever), and the answer says when to try
again, not "wrong password".
"""

import math
import time
from datetime import timedelta

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext

from accounts.errors import AccountErrorCode
from core.addresses import client_address


def cool_off() -> timedelta:
    return settings.AXES_COOLOFF_TIME


def _failures_key(address: str) -> str:
    return f"login-failures:address:{address}"


def _lock_key(address: str) -> str:
    return f"login-locked:address:{address}"


def address_locked_until(address: str) -> float | None:
    """When the lock on `address` ends (a UNIX time), or None when it is not locked."""
    until = cache.get(_lock_key(address))
    return until if until is not None and until > time.time() else None


class AddressLockoutBackend:
    """Listed first among the authentication backends: refuses any sign-in from a locked address
    before a password is checked (Django then stops and reports the attempt as failed). It signs
    no one in, so it has no `get_user`: sessions and `force_login` use the model backend."""

    def authenticate(self, request, **credentials):
        if request is None:
            return None
        until = address_locked_until(client_address(request))
        if until is not None:
            request.cible_locked_until = until
            raise PermissionDenied(gettext("Too many failed sign-ins from this address."))
        return None


@receiver(user_login_failed)
def failure_counted(sender, credentials, request=None, **kwargs) -> None:
    if request is None or getattr(request, "cible_locked_until", None) or getattr(request, "axes_locked_out", False):
        return  # refused while locked: not counted, the lock is not extended
    address = client_address(request)
    window = int(cool_off().total_seconds())
    key = _failures_key(address)
    cache.add(key, 0, timeout=window)  # the window opens at the first failure and is not extended
    try:
        failures = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        failures = 1
    if failures >= settings.CIBLE_LOGIN_ADDRESS_FAILURE_LIMIT:
        # add, not set: a lock already in place keeps its end
        cache.add(_lock_key(address), time.time() + window, timeout=window)
        cache.delete(key)


def _minutes_left(until: float) -> int:
    return max(1, math.ceil((until - time.time()) / 60))


def _pair_locked_until(request, credentials) -> float:
    """The end of the (username, address) lock django-axes holds, from its latest failure."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    latest = (
        AccessAttempt.objects.filter(username=username, ip_address=client_address(request))
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    end = (latest or timezone.now()) + cool_off()
    return end.timestamp()


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """What a locked-out sign-in gets: 429, when to try again, and Retry-After (also for django-axes)."""
    until = getattr(request, "cible_locked_until", None) or _pair_locked_until(request, credentials)
    minutes = _minutes_left(until)
    message = (
        f"Sign-in is locked after too many failed attempts: try again in {minutes} minute{'s' if minutes > 1 else ''}."
    )
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": message, "code": AccountErrorCode.LOCKED}, status=429)
    else:
        response = render(request, "accounts/locked.html", {"message": message, "minutes": minutes}, status=429)
    response["Retry-After"] = str(max(1, int(until - time.time())))
    return response


class AddressLockoutMiddleware:
    """Answers a sign-in refused by AddressLockoutBackend with `lockout_response`."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(request, "cible_locked_until", None):
            return lockout_response(request)
        return response
