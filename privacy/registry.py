"""How higher apps take part in privacy operations without privacy importing them.

Privacy sits low in the layers (above customers, below segments, audiences, campaigns
and reporting), yet consent withdrawal, erasure, access requests, removal notices and
file retention must reach the rows those apps keep. Each app connects here from its
AppConfig.ready:

- signals, sent inside the operation's transaction, for what must change rows:
  `profiles_erasing` and `consent_ending`; a receiver returns {"<what>": <count>}
  for the request's record, and a failing receiver rolls the operation back;
- registries, for what privacy reads: where a person's data went (`destination_sources`),
  the signed webhook a removal notice goes to (`removal_webhooks`), the sections of an
  access document (`access_sections`) and the files kept under the retention policy
  (`retained_files`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Model
from django.dispatch import Signal

# workspace_id, profile_ids (sorted ids of the people), external_ids (their external ids and
# merge aliases, as files name them), identities (the (type, value) pairs of their identities,
# already deleted: caches keyed by them forget them). Sent before the profiles are emptied.
profiles_erasing = Signal()

# workspace_id, ended ({profile id: channels it ended on, None for every channel}), reason.
# Receivers stop what can no longer go out (pending deliveries, triggered sends).
consent_ending = Signal()


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: str
    max_attempts: int = 3
    timeout: float = 10


# Each source: (profile_ids) -> {profile id: [destination dicts with "type", "id", "channel", "at", ...]}
destination_sources: list[Callable[[list[int]], dict[int, list[dict[str, Any]]]]] = []
# Each: (workspace_id, channel) -> the active signed webhook of that channel, or None.
removal_webhooks: list[Callable[[int, str], Webhook | None]] = []
# Each: (profile) -> {section name: JSON-ready data} for the access document.
access_sections: list[Callable[[Any], dict[str, Any]]] = []
# (model, file field, time stamp field): files deleted once older than the retention policy allows.
retained_files: list[tuple[type[Model], str, str]] = []


def register(registry: list, entry) -> None:
    """Add an app's entry to one of the registries above, once (AppConfig.ready may run again)."""
    if entry not in registry:
        registry.append(entry)


def destinations_of(profile_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Every past destination of these people's data, from every app that sends data out."""
    found: dict[int, list[dict[str, Any]]] = {}
    for source in destination_sources:
        for pk, items in source(profile_ids).items():
            found.setdefault(pk, []).extend(items)
    for items in found.values():
        items.sort(key=lambda d: (d["at"], d["type"], d["id"]))
    return found


def removal_webhook(*, workspace_id: int, channel: str) -> Webhook | None:
    for lookup in removal_webhooks:
        hook = lookup(workspace_id, channel)
        if hook is not None:
            return hook
    return None


def counts_of(responses) -> dict[str, int]:
    """Merge the counts returned by a signal's receivers."""
    done: dict[str, int] = {}
    for _receiver, counts in responses:
        for kind, n in (counts or {}).items():
            done[kind] = done.get(kind, 0) + n
    return done
