import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Workspace
from core.csvfiles import UnreadableRow, checked_rows
from core.errors import CommonErrorCode, Conflict, json_literal
from core.time import DATE_RANGE_TEXT, OutOfDateRange, in_date_range, moment_parse
from customers.models import AttributeDefinition, Profile
from segments.errors import SegmentErrorCode
from segments.models import ManualMember, Segment
from segments.rules import validate_definition
from segments.signals import segment_created

MIN_REFRESH = timedelta(minutes=5)


def definition_check(*, workspace: Workspace, definition: Any, segment: Segment | None = None) -> set[int]:
    """Validate a definition in a workspace: rules, referenced segments, and no cycle through `segment`."""
    types = dict(AttributeDefinition.objects.filter(workspace=workspace).values_list("key", "type"))
    refs = validate_definition(definition, attribute_types=types, workspace_id=workspace.pk)
    known = set(Segment.objects.filter(workspace=workspace, pk__in=refs).values_list("pk", flat=True))
    missing = sorted(refs - known)
    if missing:
        raise ValidationError(
            {
                "definition": ValidationError(
                    gettext("definition: unknown segment(s) %(missing)s in this workspace.") % {"missing": missing},
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
                        gettext("definition: segments would depend on themselves (%(names)s).") % {"names": names},
                        code=SegmentErrorCode.CYCLE,
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
        errors["definition"] = ValidationError(
            gettext("A dynamic segment needs rules."), code=SegmentErrorCode.RULES_REQUIRED
        )
    if segment.refresh_every is not None and segment.refresh_every < MIN_REFRESH:
        errors["refresh_every"] = ValidationError(
            gettext("Refresh at most every 5 minutes (PT5M)."), code=CommonErrorCode.MIN_VALUE
        )
    if errors:
        raise ValidationError(errors)
    if segment.definition is None:
        return set()
    return definition_check(workspace=segment.workspace, definition=segment.definition, segment=segment)


@transaction.atomic
def segment_create(*, workspace: Workspace, owner=None, **fields: Any) -> Segment:
    segment = Segment(workspace=workspace, owner=owner, **fields)
    refs = _clean(segment)
    segment.full_clean()
    segment.save()
    segment.depends_on.set(refs)
    segment_created.send(sender=Segment, segment=segment)  # audiences opens the segment's audience
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
        raise Conflict(
            {
                "non_field_errors": ValidationError(
                    gettext("Used by other segments: %(value)s.") % {"value": ", ".join(users)},
                    code=CommonErrorCode.PROTECTED,
                )
            }
        )
    try:
        with transaction.atomic():
            segment.delete()
    except ProtectedError as exc:
        # Rows of higher apps that must keep their segment (a campaign's targets): name their owners.
        owners = sorted({str(getattr(row, "campaign", row)) for row in exc.protected_objects})
        raise Conflict(
            {
                "non_field_errors": ValidationError(
                    gettext("Used by campaigns: %(value)s. Remove it from their targets first.")
                    % {"value": ", ".join(owners[:10])},
                    code=CommonErrorCode.PROTECTED,
                )
            }
        ) from None


# --- manual inclusions and exclusions, static lists ---------------------------------


@transaction.atomic
def manual_members_set(*, segment: Segment, add: list[int], remove: list[int], by=None) -> dict[str, int]:
    """Always include `add`, always exclude `remove`; both survive recomputation."""
    ids = set(add) | set(remove)
    known = set(Profile.objects.filter(workspace_id=segment.workspace_id, pk__in=ids).values_list("pk", flat=True))
    unknown = sorted(ids - known)
    if unknown:
        raise ValidationError(
            {
                "profiles": ValidationError(
                    gettext("Unknown profiles in this workspace: %(value)s.") % {"value": unknown[:20]},
                    code=CommonErrorCode.DOES_NOT_EXIST,
                )
            }
        )
    for action, profile_ids in ((ManualMember.Action.INCLUDE, add), (ManualMember.Action.EXCLUDE, remove)):
        ManualMember.objects.filter(segment=segment, profile_id__in=profile_ids).delete()
        ManualMember.objects.bulk_create(
            [
                ManualMember(
                    workspace_id=segment.workspace_id, segment=segment, profile_id=pk, action=action, created_by=by
                )
                for pk in sorted(set(profile_ids))
            ]
        )
    return {"included": len(set(add)), "excluded": len(set(remove))}


@transaction.atomic
def static_list_upload(*, segment: Segment, text: str, by=None) -> dict[str, int]:
    """A static segment's list from a CSV of external ids or e-mails (one column, with a header)."""
    if segment.kind != Segment.Kind.STATIC:
        raise ValidationError(
            {"file": ValidationError(gettext("Only a static segment takes a list."), code=SegmentErrorCode.NOT_STATIC)}
        )
    try:
        rows = list(checked_rows(csv.reader(io.StringIO(text))))
    except UnreadableRow as problem:
        raise ValidationError({"file": ValidationError(str(problem), code=CommonErrorCode.INVALID)}) from None
    header = [cell.strip().lower() for cell in (rows[0] if rows else [])]
    if header[:1] not in (["external_id"], ["email"]):
        raise ValidationError(
            {
                "file": ValidationError(
                    gettext("The first column must be external_id or email."), code=CommonErrorCode.INVALID
                )
            }
        )
    column = header[0]
    values = {
        row[0].strip().lower() if column == "email" else row[0].strip() for row in rows[1:] if row and row[0].strip()
    }
    lookup = "email__in" if column == "email" else "external_id__in"
    found = list(
        Profile.objects.filter(workspace_id=segment.workspace_id, **{lookup: values}).values_list("pk", flat=True)
    )
    ManualMember.objects.filter(segment=segment).delete()
    ManualMember.objects.bulk_create(
        [
            ManualMember(
                workspace_id=segment.workspace_id,
                segment=segment,
                profile_id=pk,
                action=ManualMember.Action.INCLUDE,
                created_by=by,
            )
            for pk in found
        ],
        batch_size=5_000,
    )
    return {"rows": len(values), "matched": len(found), "unmatched": len(values) - len(found)}


def as_of_read(*, raw: Any, workspace: Workspace) -> datetime | None:
    """The `as_of` of a preview: a past date (the end of that day in the workspace's calendar)
    or date-time; None when not given."""
    if raw in (None, ""):
        return None
    try:
        moment = moment_parse(raw, time_zone=workspace.time_zone, end_of_day=True)
    except OutOfDateRange:
        moment = datetime.min.replace(tzinfo=UTC)  # refused below as out of range
    if moment is None:
        raise ValidationError(
            {
                "as_of": ValidationError(
                    gettext("Expected a date (YYYY-MM-DD) or an ISO 8601 date-time, got %(value)s.")
                    % {"value": json_literal(raw)},
                    code=CommonErrorCode.INVALID,
                )
            }
        )
    if not in_date_range(moment):
        raise ValidationError(
            {
                "as_of": ValidationError(
                    gettext("as_of must be %(date_range_text)s.") % {"date_range_text": DATE_RANGE_TEXT},
                    code=CommonErrorCode.OUT_OF_RANGE,
                )
            }
        )
    if moment > timezone.now():
        raise ValidationError(
            {"as_of": ValidationError(gettext("as_of is a moment in the past (or now)."), code=CommonErrorCode.FUTURE)}
        )
    return moment
