from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import Workspace
from customers.models import AttributeDefinition
from segments.errors import SegmentErrorCode
from segments.models import Segment
from segments.rules import validate_definition

MIN_REFRESH = timedelta(minutes=5)


def definition_check(*, workspace: Workspace, definition: Any, segment: Segment | None = None) -> set[int]:
    """Validate a definition in a workspace: rules, referenced segments, and no cycle through `segment`."""
    types = dict(AttributeDefinition.objects.filter(workspace=workspace).values_list("key", "type"))
    refs = validate_definition(definition, attribute_types=types)
    known = set(Segment.objects.filter(workspace=workspace, pk__in=refs).values_list("pk", flat=True))
    missing = sorted(refs - known)
    if missing:
        raise ValidationError(
            {
                "definition": ValidationError(
                    f"definition: unknown segment(s) {missing} in this workspace.",
                    code=SegmentErrorCode.UNKNOWN_SEGMENT,
                )
            }
        )
    if segment is not None and segment.pk is not None and refs:
        cycle = _path_back(workspace=workspace, start=refs, target=segment.pk)
        if cycle is not None:  # an empty chain is a segment that uses itself
            names = " -> ".join([segment.name, *cycle, segment.name])
            raise ValidationError(
                {
                    "definition": ValidationError(
                        f"definition: segments would depend on themselves ({names}).", code=SegmentErrorCode.CYCLE
                    )
                }
            )
    return refs


def _path_back(*, workspace: Workspace, start: set[int], target: int) -> list[str] | None:
    """The chain of segment names from `start` back to `target`, if the dependency graph has one."""
    edges: dict[int, list[int]] = {}
    for source, dependency in Segment.depends_on.through.objects.filter(from_segment__workspace=workspace).values_list(
        "from_segment_id", "to_segment_id"
    ):
        edges.setdefault(source, []).append(dependency)
    names = dict(Segment.objects.filter(workspace=workspace).values_list("pk", "name"))
    stack = [(node, [names.get(node, str(node))]) for node in start]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node == target:
            return path[:-1]
        if node in seen:
            continue
        seen.add(node)
        stack.extend((nxt, [*path, names.get(nxt, str(nxt))]) for nxt in edges.get(node, []))
    return None


def _clean(segment: Segment) -> set[int]:
    errors = {}
    if segment.kind == Segment.Kind.DYNAMIC and segment.definition is None:
        errors["definition"] = ValidationError("A dynamic segment needs rules.", code=SegmentErrorCode.RULES_REQUIRED)
    if segment.refresh_every is not None and segment.refresh_every < MIN_REFRESH:
        errors["refresh_every"] = ValidationError("Refresh at most every 5 minutes.", code="min_value")
    if errors:
        raise ValidationError(errors)
    if segment.definition is None:
        return set()
    return definition_check(workspace=segment.workspace, definition=segment.definition, segment=segment)


@transaction.atomic
def segment_create(*, workspace: Workspace, owner=None, **fields: Any) -> Segment:
    from audiences.models import Audience

    segment = Segment(workspace=workspace, owner=owner, **fields)
    refs = _clean(segment)
    segment.full_clean()
    segment.save()
    segment.depends_on.set(refs)
    Audience.objects.create(workspace=workspace, segment=segment)
    return segment


@transaction.atomic
def segment_update(*, segment: Segment, **fields: Any) -> Segment:
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    for name, value in fields.items():
        setattr(segment, name, value)
    refs = _clean(segment)
    segment.full_clean()
    segment.save()
    segment.depends_on.set(refs)
    return segment


@transaction.atomic
def segment_delete(*, segment: Segment) -> None:
    users = list(segment.used_by.values_list("name", flat=True))
    if users:
        raise ValidationError(
            {"non_field_errors": ValidationError(f"Used by other segments: {', '.join(users)}.", code="protected")}
        )
    segment.delete()
