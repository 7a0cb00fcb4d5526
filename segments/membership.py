"""The current computed audience of a segment, as segments sees it.

Segments define who qualifies; audiences (a higher layer) materialise it in versions. A
rule that refers to another segment, the index table and the overlap of two segments read
the materialised members through the provider that audiences registers in its
AppConfig.ready; segments never import audiences. Without a provider (or before an
audience was computed) a segment has no current members.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from django.db.models import QuerySet


@dataclass(frozen=True)
class CurrentAudience:
    version: int
    size: int
    members: QuerySet  # values("profile_id") of the current version


# (workspace_id, segment ids or None for all) -> {segment id: its computed audience}
Provider = Callable[[int, Iterable[int] | None], Mapping[int, CurrentAudience]]
_providers: list[Provider] = []


def membership_provider_register(provider: Provider) -> None:
    if provider not in _providers:
        _providers.append(provider)


def current_audiences(*, workspace_id: int, segment_ids: Iterable[int] | None = None) -> dict[int, CurrentAudience]:
    """The segments of the workspace that have a computed audience (version 1 or more)."""
    found: dict[int, CurrentAudience] = {}
    for provider in _providers:
        found.update(provider(workspace_id, segment_ids))
    return found


def current_audience(*, segment) -> CurrentAudience | None:
    return current_audiences(workspace_id=segment.workspace_id, segment_ids=[segment.pk]).get(segment.pk)
