"""Who a request is, and what it may reach, without asking the database on every request.

Every API request looks up its token (and the user behind it) and the caller's membership of the
workspace in its URL. Both are kept in the shared cache (Redis in production) for ACCESS_TTL_S
seconds, under a *generation*: one number that any change to a user, a token, a membership or a
workspace bumps (a receiver below), so that a revoked token or membership stops working on the very
next request, in every process. An entry says the generation it was read under and counts only
while that is still the current one; the generation and the entry come back in one round trip.

The generation is bumped when the change is made and again once its transaction commits: a
request that read the old row between the two would otherwise cache it under the new generation.

No secret is cached: tokens are keyed by a digest of the key, and users are kept without their
password hash (it is read from the database if something asks for it). When the cache cannot be
reached, the look-ups go to the database as before.
"""

import hashlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save
from rest_framework.authtoken.models import Token

from accounts.models import Membership, Workspace

logger = logging.getLogger(__name__)

ACCESS_TTL_S = 60
GENERATION_KEY = "cible:access:generation"
_MISSING = object()
_M = TypeVar("_M", bound=models.Model)
_T = TypeVar("_T")


def generation_bump() -> None:
    """Invalidate every cached token and membership now, and again when the transaction commits."""
    _bump()
    transaction.on_commit(_bump)


def _bump() -> None:
    try:
        if cache.add(GENERATION_KEY, 1, timeout=None):
            return
        cache.incr(GENERATION_KEY)
    except ValueError:  # expired between add and incr
        cache.add(GENERATION_KEY, 1, timeout=None)
    except Exception:  # the cache is down: nothing of it can be read either
        logger.warning("access cache: could not bump the generation", exc_info=True)


def _get(key: str) -> tuple[Any, Any]:
    """(the current generation, the entry or _MISSING); (None, _MISSING) when the cache is down."""
    try:
        found = cache.get_many([GENERATION_KEY, key])
    except Exception:
        return None, _MISSING
    current = found.get(GENERATION_KEY, 0)
    entry = found.get(key, _MISSING)
    if entry is _MISSING or entry[0] != current:
        return current, _MISSING
    return current, entry[1]


def _set(key: str, generation: Any, value: Any) -> None:
    if generation is None:
        return
    try:
        cache.set(key, (generation, value), timeout=ACCESS_TTL_S)
    except Exception:
        pass


def _fields(instance: models.Model, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields if f.attname not in skip}


def _rebuilt(model: type[_M], values: dict[str, Any]) -> _M:
    """The row as the database gave it (fields left out are deferred: read on first access)."""
    names = list(values)
    return model.from_db("default", names, [values[name] for name in names])


def _through(
    key: str, read: Callable[[], _T | None], dump: Callable[[_T], Any], load: Callable[[Any], _T]
) -> _T | None:
    """What `read()` finds (None included), from the cache while the generation holds, else read and
    kept: `dump` makes the cached entry, `load` the value again."""
    generation, entry = _get(key)
    if entry is not _MISSING:
        return None if entry is None else load(entry)
    found = read()
    _set(key, generation, None if found is None else dump(found))
    return found


def _token_load(entry: Any) -> Token:
    user_values, token_values = entry
    token = _rebuilt(Token, token_values)
    token.user = _rebuilt(get_user_model(), user_values)
    return token


def token_user(key: str) -> tuple[Any, Token] | None:
    """The token with this key and its user (None when no token has it)."""
    token = _through(
        "cible:access:token:" + hashlib.sha256(key.encode()).hexdigest(),
        read=lambda: Token.objects.select_related("user").filter(key=key).first(),
        dump=lambda token: (_fields(token.user, skip=("password",)), _fields(token)),
        load=_token_load,
    )
    return None if token is None else (token.user, token)


def membership_found(
    *, user_id: int, slug: str, read: Callable[[], tuple[Workspace, str] | None]
) -> tuple[Workspace, str] | None:
    """The workspace and the user's role in it, through the cache; `read()` asks the database."""
    return _through(
        f"cible:access:membership:{user_id}:{hashlib.sha256(slug.encode()).hexdigest()}",
        read=read,
        dump=lambda found: (_fields(found[0]), found[1]),
        load=lambda entry: (_rebuilt(Workspace, entry[0]), entry[1]),
    )


def _changed(sender, **kwargs) -> None:
    generation_bump()


def connect() -> None:
    for model in (get_user_model(), Token, Membership, Workspace):
        uid = f"accounts.access_cache.{model._meta.label}"
        post_save.connect(_changed, sender=model, dispatch_uid=uid + ".save")
        post_delete.connect(_changed, sender=model, dispatch_uid=uid + ".delete")
