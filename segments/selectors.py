import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet, ValidationError
from django.db import OperationalError, connection
from django.db.models import Count, F, Func, IntegerField, Q, QuerySet
from django.db.models.query import RawQuerySet
from django.utils import timezone

from accounts.models import Workspace
from core.sql import InRows, is_statement_timeout, statement_timeout
from customers.models import AttributeDefinition, Profile
from segments.compiler import CompileContext, compile_definition
from segments.errors import SegmentErrorCode
from segments.membership import current_audiences
from segments.models import ManualMember, Segment

PREVIEW_SAMPLE = 10
# The fixed sample an estimate counts: every profile whose id is a multiple of SAMPLE_EVERY (1.6 %
# of the base; PostgreSQL keeps a partial index of them, customers migration 0010). Under
# ESTIMATE_FROM profiles the exact count is as quick, and an estimate is not made.
SAMPLE_EVERY = 64
ESTIMATE_FROM = 50_000


def compile_context(
    *, workspace: Workspace, now: datetime | None = None, as_of: datetime | None = None
) -> CompileContext:
    """What a definition is evaluated against: `now` with the other segments' current audiences,
    or a past moment `as_of`, where the other segments are their own rules at that moment."""
    segment_members: Mapping[int, QuerySet]
    if as_of is not None:
        segment_members = _MembersAsOf(workspace, as_of)
    else:
        segment_members = {
            segment_id: current.members for segment_id, current in current_audiences(workspace_id=workspace.pk).items()
        }
    return CompileContext(
        workspace_id=workspace.pk,
        now=as_of or now or timezone.now(),
        attribute_types=dict(AttributeDefinition.objects.filter(workspace=workspace).values_list("key", "type")),
        segment_members=segment_members,
        time_zone=workspace.time_zone,
    )


class _MembersAsOf(Mapping[int, QuerySet]):
    """Members of the workspace's segments at a past moment, compiled on demand: an audience
    only knows the present, so "who qualified on 1 March" evaluates referenced rules then too
    (static lists and manual changes as they stand). Definitions form no cycle."""

    def __init__(self, workspace: Workspace, as_of: datetime) -> None:
        self.workspace, self.as_of = workspace, as_of

    def __getitem__(self, segment_id: int) -> QuerySet:
        segment = Segment.objects.filter(workspace=self.workspace, pk=segment_id).first()
        if segment is None:
            raise KeyError(segment_id)
        ctx = compile_context(workspace=self.workspace, as_of=self.as_of)
        return segment_members_query(segment=segment, ctx=ctx).values("pk")

    def __iter__(self) -> Iterator[int]:
        return iter(Segment.objects.filter(workspace=self.workspace).values_list("pk", flat=True))

    def __len__(self) -> int:
        return Segment.objects.filter(workspace=self.workspace).count()


@contextmanager
def bounded(*, what: str, field: str = "definition") -> Iterator[None]:
    """Run a query answered while a client waits within CIBLE_PREVIEW_TIMEOUT seconds; past that
    the database stops it and the client gets a 400 that says what to narrow."""
    seconds = settings.CIBLE_PREVIEW_TIMEOUT
    try:
        with statement_timeout(seconds=seconds):
            yield
    except OperationalError as exc:
        if not is_statement_timeout(exc):
            raise
        message = (
            f"{what} took longer than {seconds:g} s and was stopped. Narrow the rules (a shorter window, "
            "fewer alternatives under any, a segment instead of a long list), or compute the audience, "
            "which runs in a worker without this limit."
        )
        raise ValidationError({field: ValidationError(message, code=SegmentErrorCode.TOO_SLOW)}) from exc


def segment_members_query(*, segment: Segment, ctx: CompileContext) -> QuerySet[Profile]:
    """Who belongs to the segment now: its rules (or static list), plus manual inclusions, minus exclusions.

    Written as joins whatever the sizes (see segments.compiler): the exclusions are one anti-join;
    the inclusions, when there are any, are a UNION with the people the rules select, rather than
    an OR that would leave every rule's subquery under it.
    """
    manual = ManualMember.objects.filter(segment=segment)
    includes = manual.filter(action=ManualMember.Action.INCLUDE).values("profile_id")
    excluded = ~Q(InRows(manual.filter(action=ManualMember.Action.EXCLUDE).values("profile_id")))
    people = Profile.objects.filter(workspace_id=segment.workspace_id).not_erased()
    if segment.kind != Segment.Kind.DYNAMIC:
        return people.filter(InRows(includes)).filter(excluded)
    if segment.definition is None:  # the database refuses it (segments_segment_dynamic_has_rules)
        raise ValueError(f"Dynamic segment {segment.pk} has no rules.")
    by_rules = people.filter(compile_definition(segment.definition, ctx)).filter(excluded)
    if includes.exists():
        # A UNION of the two sets (only values() and count() apply to it): written as one set
        # joined to the profiles, the rules' people were re-read through the primary key one by one.
        return by_rules.order_by().union(people.filter(InRows(includes)).filter(excluded).order_by())
    return by_rules


def segment_members_among(*, segment: Segment, ctx: CompileContext, profile_ids: Sequence[int]) -> set[int]:
    """Which of these people belong to the segment now (as segment_members_query, for a few people:
    after a merge or an unmerge, their audiences follow at once)."""
    manual = dict(
        ManualMember.objects.filter(segment=segment, profile_id__in=list(profile_ids)).values_list(
            "profile_id", "action"
        )
    )
    people = Profile.objects.filter(workspace_id=segment.workspace_id, pk__in=list(profile_ids)).not_erased()
    found = {pk for pk, action in manual.items() if action == ManualMember.Action.INCLUDE}
    if segment.kind == Segment.Kind.DYNAMIC and segment.definition is not None:
        found |= set(people.filter(compile_definition(segment.definition, ctx)).values_list("pk", flat=True))
    found &= set(people.values_list("pk", flat=True))
    return {pk for pk in found if manual.get(pk) != ManualMember.Action.EXCLUDE}


def definition_preview(
    *, workspace: Workspace, definition: dict, as_of: datetime | None = None, sample: int = PREVIEW_SAMPLE
) -> dict[str, Any]:
    """Size, share of the workspace's base and a few members of a (validated) definition, computed
    now or as of a past moment."""
    ctx = compile_context(workspace=workspace, as_of=as_of)
    return _preview(workspace, definition_members_query(definition=definition, ctx=ctx), sample, ctx.now)


def definition_estimate(*, workspace: Workspace, definition: dict) -> dict[str, Any] | None:
    """How many people a (validated) definition selects, estimated from the fixed sample of the
    base, with a 95 % interval (Wilson's, with the finite-population correction); None when the
    base is small enough for the exact count to be as quick.

    Each condition is evaluated per sampled profile (a filtered count, where PostgreSQL probes the
    profile-major indexes of events and orders for each of them instead of reading whole sets)."""
    base = Profile.objects.filter(workspace=workspace).count()
    if base < getattr(settings, "CIBLE_ESTIMATE_FROM", ESTIMATE_FROM):
        return None
    ctx = compile_context(workspace=workspace)
    sampled = (
        Profile.objects.filter(workspace_id=workspace.pk)
        .not_erased()
        .alias(_slot=Func(F("id"), template=f"mod(%(expressions)s, {SAMPLE_EVERY})", output_field=IntegerField()))
        .filter(_slot=0)
    )
    try:
        condition = compile_definition(definition, ctx)
        with bounded(what="The estimate"):
            row = sampled.aggregate(n=Count("pk"), k=Count("pk", filter=condition))
    except EmptyResultSet:
        row = {"n": sampled.count(), "k": 0}
    n, k = row["n"], row["k"]
    if not n:
        return None
    low, high = wilson_interval(k=k, n=n, population=base)
    return {
        "count": round(k / n * base),
        "low": round(low * base),
        "high": round(high * base),
        "base": base,
        "share": round(k / n, 6),
        "sampled": n,
    }


def wilson_interval(*, k: int, n: int, population: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson's score interval for a proportion k/n drawn without replacement from `population`."""
    fpc = math.sqrt(max(population - n, 0) / (population - 1)) if population > 1 else 0.0
    zz = z * fpc
    p = k / n
    centre = (p + zz * zz / (2 * n)) / (1 + zz * zz / n)
    half = zz * math.sqrt(p * (1 - p) / n + zz * zz / (4 * n * n)) / (1 + zz * zz / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def definition_members_query(*, definition: dict, ctx: CompileContext) -> QuerySet[Profile]:
    """Who an unsaved (validated) definition selects: its rules over the profiles not erased."""
    return (
        Profile.objects.filter(workspace_id=ctx.workspace_id).not_erased().filter(compile_definition(definition, ctx))
    )


def segment_preview(*, segment: Segment, as_of: datetime | None = None, sample: int = PREVIEW_SAMPLE) -> dict[str, Any]:
    ctx = compile_context(workspace=segment.workspace, as_of=as_of)
    return _preview(segment.workspace, segment_members_query(segment=segment, ctx=ctx), sample, ctx.now)


def preview_rows(*, members: QuerySet[Profile], sample: int = PREVIEW_SAMPLE) -> RawQuerySet:
    """The preview's one query: the first members by id, each carrying the count of all of them.

    The members are a MATERIALIZED common table expression, planned for reading every row: one
    execution gives the count and the sample. Written as `... count(*) OVER () ... LIMIT 10`, the
    planner costs the members for the first ten rows only and picks nested loops that re-read a
    whole set per profile (a broad segment with manual members ran past 20 s instead of 2 s at
    1M profiles); a separate `LIMIT` query plans differently again."""
    sql, params = members.values("pk").query.sql_with_params()
    table = connection.ops.quote_name(Profile._meta.db_table)
    return Profile.objects.raw(
        f"WITH members (id) AS MATERIALIZED ({sql}) "
        f"SELECT p.*, (SELECT count(*) FROM members) AS _matching FROM {table} p "
        f"WHERE p.id IN (SELECT id FROM members ORDER BY id LIMIT %s) ORDER BY p.id",
        [*params, max(sample, 1)],
    )


def _preview(workspace: Workspace, members: QuerySet[Profile], sample: int, at: datetime) -> dict[str, Any]:
    try:
        rows = preview_rows(members=members, sample=sample)
    except EmptyResultSet:  # rules that select no one whatever the data (a segment never computed)
        first = []
    else:
        with bounded(what="The preview"):
            first = list(rows)
    count = getattr(first[0], "_matching") if first else 0  # noqa: B009 (an annotation the stubs cannot see)
    base = Profile.objects.filter(workspace=workspace).count()
    return {
        "count": count,
        "base": base,
        "share": round(count / base, 6) if base else None,
        "sample": first[:sample],
        "as_of": at,
    }


def segment_overlap(*, segment: Segment, other: Segment) -> dict[str, Any]:
    """Members in common between the current audiences of two segments, and their Jaccard index."""
    current = current_audiences(workspace_id=segment.workspace_id, segment_ids=[segment.pk, other.pk])
    # A segment never computed has no members: an empty values("profile_id"), like CurrentAudience.members.
    empty: QuerySet = ManualMember.objects.none().values("profile_id")
    mine, theirs = (current[s.pk].members if s.pk in current else empty for s in (segment, other))
    size_a, size_b = mine.count(), theirs.count()
    both = mine.filter(profile_id__in=theirs).count()
    union = size_a + size_b - both
    return {
        "segment": segment.pk,
        "other": other.pk,
        "segment_size": size_a,
        "other_size": size_b,
        "both": both,
        "jaccard": round(both / union, 6) if union else None,
    }
