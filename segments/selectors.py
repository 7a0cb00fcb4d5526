from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet, Window
from django.utils import timezone

from accounts.models import Workspace
from customers.models import AttributeDefinition, Profile
from segments.compiler import CompileContext, compile_definition
from segments.models import Segment

PREVIEW_SAMPLE = 10


def compile_context(*, workspace: Workspace, now: datetime | None = None) -> CompileContext:
    from audiences.models import Audience

    return CompileContext(
        workspace_id=workspace.pk,
        now=now or timezone.now(),
        attribute_types=dict(AttributeDefinition.objects.filter(workspace=workspace).values_list("key", "type")),
        audiences={
            segment_id: (audience_id, version)
            for segment_id, audience_id, version in Audience.objects.filter(workspace=workspace).values_list(
                "segment_id", "pk", "current_version"
            )
        },
    )


def segment_list(*, workspace: Workspace) -> QuerySet[Segment]:
    return Segment.objects.filter(workspace=workspace).select_related("audience", "owner")


def segment_members_query(*, segment: Segment, ctx: CompileContext) -> QuerySet[Profile]:
    """Who belongs to the segment now: its rules (or static list), plus manual inclusions, minus exclusions."""
    from audiences.models import ManualMember

    manual = ManualMember.objects.filter(segment=segment)
    included = Q(pk__in=manual.filter(action=ManualMember.Action.INCLUDE).values("profile_id"))
    excluded = Q(pk__in=manual.filter(action=ManualMember.Action.EXCLUDE).values("profile_id"))
    rules = compile_definition(segment.definition, ctx) if segment.kind == Segment.Kind.DYNAMIC else Q(pk__in=[])
    return Profile.objects.filter(workspace_id=segment.workspace_id).not_erased().filter((rules | included) & ~excluded)


def definition_preview(*, workspace: Workspace, definition: dict, sample: int = PREVIEW_SAMPLE) -> dict[str, Any]:
    """Size, share of the workspace's base and a few members of a (validated) definition, computed now."""
    ctx = compile_context(workspace=workspace)
    members = Profile.objects.filter(workspace=workspace).not_erased().filter(compile_definition(definition, ctx))
    return _preview(workspace, members, sample)


def segment_preview(*, segment: Segment, sample: int = PREVIEW_SAMPLE) -> dict[str, Any]:
    ctx = compile_context(workspace=segment.workspace)
    return _preview(segment.workspace, segment_members_query(segment=segment, ctx=ctx), sample)


def _preview(workspace: Workspace, members: QuerySet[Profile], sample: int) -> dict[str, Any]:
    # One execution of the segment's query gives both the sample and the count (a window over
    # all the matching rows), instead of a count and then a LIMIT that plans differently.
    first = list(members.annotate(_matching=Window(Count("*"))).order_by("pk")[: max(sample, 1)])
    count = first[0]._matching if first else 0
    base = Profile.objects.filter(workspace=workspace).count()
    return {
        "count": count,
        "base": base,
        "share": round(count / base, 6) if base else None,
        "sample": first[:sample],
    }


def segment_overlap(*, segment: Segment, other: Segment) -> dict[str, Any]:
    """Members in common between the current audiences of two segments, and their Jaccard index."""
    from audiences.models import AudienceMember

    def members(s: Segment):
        return AudienceMember.objects.filter(audience=s.audience, version=s.audience.current_version)

    size_a, size_b = members(segment).count(), members(other).count()
    both = members(segment).filter(profile_id__in=members(other).values("profile_id")).count()
    union = size_a + size_b - both
    return {
        "segment": segment.pk,
        "other": other.pk,
        "segment_size": size_a,
        "other_size": size_b,
        "both": both,
        "jaccard": round(both / union, 6) if union else None,
    }
