"""Audience computation: versioned snapshots, a lease, and a compare-and-set switch.

1. Take the lease: one UPDATE that succeeds only when no live lease exists, and
   hands out the next version number. A second request while a computation
   holds the lease is a no-op, so two concurrent refreshes give one computation.
   A heartbeat renews the lease while the run works (core.leases); a killed worker's
   lease lapses within a minute and the workers' recovery tick queues the run again.
2. Write the new version with one INSERT ... SELECT of the compiled segment query.
3. In one transaction: make it current with `current_version = v WHERE
   current_version < v AND lease_token = mine`, record the run, release the lease.
   A reader never sees a half-written version; a killed worker leaves the old
   version current; a stale run whose lease was taken over can neither switch its
   version live nor clear the new holder's lease.
4. Clear versions older than the previous one.
"""

import logging
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import OperationalError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from audiences.errors import AudienceErrorCode
from audiences.models import Audience, AudienceMember, AudienceRun
from audiences.signals import audience_computed, audience_members_followed
from core.leases import MAX_RECOVERIES, lease_expired, lease_heartbeat, lease_take
from core.sql import insert_select, is_statement_timeout, statement_timeout
from customers.models import Profile
from privacy.models import Suppression
from privacy.selectors import contactable_counts, profiles_unsuppressed
from segments.models import ManualMember, Segment
from segments.selectors import compile_context, segment_members_among, segment_members_query

logger = logging.getLogger(__name__)

LOST_RUN = "The worker was lost before finishing"

# A queued request whose task has not started within this time is taken as lost.
QUEUED_FOR = timedelta(minutes=5)
# Per purpose/channel, how many members each snapshot may contact.
CONTACT_CHANNELS = [
    ("direct_marketing", "email"),
    ("direct_marketing", "sms"),
    ("direct_marketing", "push"),
    ("ad_targeting", "display"),
    ("ad_targeting", "social"),
]


def audience_refresh_request(*, segment: Segment, trigger: str = "manual", by=None) -> Audience:
    """Queue a computation, unless one is already queued or running under a live lease."""
    from audiences.tasks import audience_compute_task

    now = timezone.now()
    with transaction.atomic():
        audience = Audience.objects.select_for_update().get(segment=segment)
        if _busy(audience, now):
            return audience
        audience.status = Audience.Status.QUEUED
        audience.requested_at = now
        audience.save(update_fields=["status", "requested_at"])
        audience_compute_task.delay_on_commit(
            segment_id=segment.pk, trigger=trigger, requested_by_id=getattr(by, "pk", None)
        )
    return audience


def _busy(audience: Audience, now) -> bool:
    """Running under a live lease, or queued recently enough that its task is still to come."""
    if audience.lease_expires_at is not None and audience.lease_expires_at > now:
        return True
    return (
        audience.status == Audience.Status.QUEUED
        and bool(audience.requested_at)
        and audience.requested_at > now - QUEUED_FOR
    )


def audience_lease_take(*, audience_id: int) -> tuple[uuid.UUID, int] | None:
    """Take the audience's lease and the next version number; None while another run holds it."""
    with transaction.atomic():
        token = lease_take(
            queryset=Audience.objects.filter(pk=audience_id),
            next_version=F("next_version") + 1,
            status=Audience.Status.COMPUTING,
        )
        if token is None:
            return None
        version = Audience.objects.filter(pk=audience_id).values_list("next_version", flat=True).get()
    return token, version


def audiences_recover() -> int:
    """Audiences whose computing worker went silent: fail the lost run and queue the computation
    again, or leave the audience failed after MAX_RECOVERIES lost runs in a row."""
    from audiences.tasks import audience_compute_task

    recovered = 0
    for audience_id, segment_id, token in Audience.objects.filter(lease_expired()).values_list(
        "pk", "segment_id", "lease_token"
    ):
        with transaction.atomic():
            lapsed = Audience.objects.filter(pk=audience_id, lease_token=token).filter(lease_expired())
            if not lapsed.update(lease_token=None, lease_expires_at=None, status=Audience.Status.QUEUED):
                continue  # renewed, released or recovered meanwhile
            _fail_lost_runs(audience_id)
            runs = AudienceRun.objects.filter(audience_id=audience_id).order_by("-started_at", "-id")
            lost_in_a_row = 0
            for status, error in runs.values_list("status", "error")[:MAX_RECOVERIES]:
                if status != AudienceRun.Status.FAILED or not error.startswith(LOST_RUN):
                    break
                lost_in_a_row += 1
            if lost_in_a_row >= MAX_RECOVERIES:
                Audience.objects.filter(pk=audience_id).update(status=Audience.Status.FAILED)
            else:
                Audience.objects.filter(pk=audience_id).update(requested_at=timezone.now())
                # Queued inside the transaction: if the broker refuses, nothing changed and the
                # next tick tries again.
                audience_compute_task.delay(segment_id=segment_id, trigger="recovery")
        recovered += 1
    return recovered


def _fail_lost_runs(audience_id: int) -> None:
    AudienceRun.objects.filter(audience_id=audience_id, status=AudienceRun.Status.RUNNING).update(
        status=AudienceRun.Status.FAILED,
        error=f"{LOST_RUN}; its lease expired.",
        finished_at=timezone.now(),
    )


def audience_compute(
    *, segment_id: int, trigger: str = "manual", requested_by_id: int | None = None
) -> AudienceRun | None:
    """Compute the segment's audience now; None when another computation holds the lease."""
    segment = Segment.objects.select_related("workspace").filter(pk=segment_id).first()
    if segment is None:
        return None
    missing = _dependencies_compute(segment)
    audience = Audience.objects.get(segment=segment)
    lease = audience_lease_take(audience_id=audience.pk)
    if lease is None:
        return None
    token, version = lease
    started = time.monotonic()
    # Holding the lease, any run still marked running belongs to a worker that died.
    _fail_lost_runs(audience.pk)
    run = AudienceRun.objects.create(
        audience=audience, version=version, trigger=trigger, requested_by_id=requested_by_id, started_at=timezone.now()
    )
    with lease_heartbeat(model=Audience, pk=audience.pk, token=token):
        if missing:
            # Computing now would silently count nobody from those segments: fail, and say why.
            names = ", ".join(repr(name) for name in missing)
            Audience.objects.filter(pk=audience.pk, lease_token=token).update(
                status=Audience.Status.FAILED, lease_token=None, lease_expires_at=None
            )
            _finish(
                run,
                started,
                status=AudienceRun.Status.FAILED,
                error=f"Segments this one uses have no audience yet ({names}): compute them, then refresh again.",
            )
            return AudienceRun.objects.get(pk=run.pk)
        return _compute(segment, audience, run, token, version, started)


DEPENDENCY_WAIT = timedelta(seconds=10)


def _dependencies_compute(segment: Segment) -> list[str]:
    """Compute first, in order, the audiences of the segments this one uses that were never computed
    (their own dependencies first, recursively); returns the names of those still without one. A
    dependency another worker is computing is waited for, up to 10 seconds."""
    missing = []
    for dependency in segment.depends_on.select_related("audience").order_by("pk"):
        if dependency.audience.current_version > 0:
            continue
        if audience_compute(segment_id=dependency.pk, trigger="dependency") is None:
            deadline = time.monotonic() + DEPENDENCY_WAIT.total_seconds()
            while time.monotonic() < deadline and not _computed(dependency):
                time.sleep(0.5)
        if not _computed(dependency):
            missing.append(dependency.name)
    return missing


def _computed(segment: Segment) -> bool:
    return Audience.objects.filter(segment=segment, current_version__gt=0).exists()


def _compute(segment: Segment, audience: Audience, run: AudienceRun, token, version: int, started: float):
    try:
        with statement_timeout(seconds=settings.CIBLE_TASK_STATEMENT_TIMEOUT):
            return _compute_bounded(segment, audience, run, token, version, started)
    except Exception as exc:
        logger.exception("Audience computation of segment %s failed", segment.pk)
        AudienceMember.objects.of_version(audience_id=audience.pk, version=version).delete()
        Audience.objects.filter(pk=audience.pk, lease_token=token).update(
            status=Audience.Status.FAILED, lease_token=None, lease_expires_at=None
        )
        timed_out = is_statement_timeout(exc)
        if timed_out:
            # Not transient: the same query would run as long again. Recorded, never retried.
            error = (
                f"A query ran longer than {settings.CIBLE_TASK_STATEMENT_TIMEOUT:g} s and was stopped: "
                "narrow the segment's rules, then refresh again."
            )
        else:
            error = f"{type(exc).__name__}: {exc}"[:2000]
        _finish(run, started, status=AudienceRun.Status.FAILED, error=error)
        if isinstance(exc, OperationalError) and not timed_out:
            raise  # transient: the task retries with a new version
        return AudienceRun.objects.get(pk=run.pk)


def _compute_bounded(segment: Segment, audience: Audience, run: AudienceRun, token, version: int, started: float):
    # Rows left by a computation that was killed mid-write are never current: clear them.
    AudienceMember.objects.filter(audience=audience, version__gt=audience.current_version).exclude(
        version=version
    ).delete()
    ctx = compile_context(workspace=segment.workspace)
    members = segment_members_query(segment=segment, ctx=ctx)
    with transaction.atomic():  # a failed write rolls back alone, the clean-up below still runs
        _insert_version(audience, version, members)
    size = AudienceMember.objects.of_version(audience_id=audience.pk, version=version).count()
    contactable = _contactable(audience, version, ctx.now)
    with transaction.atomic():
        previous = Audience.objects.select_for_update().get(pk=audience.pk).current_version
        switched = Audience.objects.filter(pk=audience.pk, current_version__lt=version, lease_token=token).update(
            current_version=version,
            size=size,
            contactable=contactable,
            computed_at=timezone.now(),
            status=Audience.Status.READY,
            lease_token=None,
            lease_expires_at=None,
        )
        if switched:
            added, removed = _diff(audience.pk, previous, version)
            _finish(run, started, status=AudienceRun.Status.SUCCEEDED, size=size, added=added, removed=removed)
            transaction.on_commit(
                lambda: audience_computed.send(
                    sender=Audience, segment_id=segment.pk, workspace_id=segment.workspace_id, version=version
                )
            )
        else:
            _finish(run, started, status=AudienceRun.Status.SUPERSEDED, size=size)
    if switched:
        # Keep the previous version for diffs and for readers that started before the switch.
        AudienceMember.objects.filter(audience=audience, version__lt=previous).delete()
    else:
        AudienceMember.objects.of_version(audience_id=audience.pk, version=version).delete()
    run.refresh_from_db()
    return run


def _insert_version(audience: Audience, version: int, members) -> None:
    insert_select(
        AudienceMember,
        ["profile"],
        members.values("pk"),
        fixed={"workspace": audience.workspace_id, "audience": audience.pk, "version": version},
    )


def _diff(audience_id: int, previous: int, version: int) -> tuple[int, int]:
    new = AudienceMember.objects.of_version(audience_id=audience_id, version=version)
    old = AudienceMember.objects.of_version(audience_id=audience_id, version=previous)
    added = new.exclude(profile_id__in=old.values("profile_id")).count()
    removed = old.exclude(profile_id__in=new.values("profile_id")).count() if previous else 0
    return added, removed


def _contactable(audience: Audience, version: int, now) -> dict[str, int]:
    members = AudienceMember.objects.of_version(audience_id=audience.pk, version=version)
    if Suppression.objects.filter(workspace_id=audience.workspace_id).exists():
        members = members.filter(
            profile_id__in=profiles_unsuppressed(profiles=Profile.objects.all(), workspace_id=audience.workspace_id)
        )
    counts = contactable_counts(
        profile_ids=members.values("profile_id"), workspace_id=audience.workspace_id, pairs=CONTACT_CHANNELS, at=now
    )
    return {f"{purpose}/{channel}": counts[(purpose, channel)] for purpose, channel in CONTACT_CHANNELS}


def _finish(run: AudienceRun, started: float, **fields) -> None:
    fields["finished_at"] = timezone.now()
    fields["duration_ms"] = int((time.monotonic() - started) * 1000)
    AudienceRun.objects.filter(pk=run.pk).update(**fields)


def audiences_refresh_due(*, now=None) -> list[int]:
    """Queue the audiences whose refresh interval has passed, dependencies first.

    A segment whose dependencies are themselves due waits for the next tick, so
    it is always computed after them (beat runs this every minute).
    """
    now = now or timezone.now()
    segments = list(
        Segment.objects.filter(kind=Segment.Kind.DYNAMIC, refresh_every__isnull=False)
        .select_related("audience")
        .prefetch_related("depends_on__audience")
    )

    def due(segment: Segment) -> bool:
        audience = segment.audience
        if _busy(audience, now):
            return False
        every = segment.refresh_every  # not None: only scheduled segments are listed
        return audience.computed_at is None or every is None or audience.computed_at + every <= now

    due_ids = {segment.pk for segment in segments if due(segment)}
    queued = []
    for segment in segments:
        if segment.pk not in due_ids:
            continue
        waiting = [dep for dep in segment.depends_on.all() if dep.pk in due_ids or dep.audience.current_version == 0]
        if waiting:
            continue
        audience_refresh_request(segment=segment, trigger="schedule")
        queued.append(segment.pk)
    return queued


@transaction.atomic
def segment_freeze(*, segment: Segment, by=None) -> Segment:
    """Turn a dynamic segment into a static list of its current members (kept rules for reference)."""
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    audience = segment.audience
    if segment.kind == Segment.Kind.STATIC:
        return segment
    if audience.current_version == 0:
        raise ValidationError(
            {
                "non_field_errors": ValidationError(
                    gettext("Compute the audience before freezing it."), code=AudienceErrorCode.NO_AUDIENCE
                )
            }
        )
    members = AudienceMember.objects.current_of(audience)
    excluded = ManualMember.objects.filter(segment=segment, action=ManualMember.Action.EXCLUDE)
    excluded.delete()  # the frozen list already reflects them
    ManualMember.objects.bulk_create(
        [
            ManualMember(
                workspace_id=segment.workspace_id,
                segment=segment,
                profile_id=profile_id,
                action=ManualMember.Action.INCLUDE,
                created_by=by,
            )
            for profile_id in members.values_list("profile_id", flat=True).iterator(chunk_size=10_000)
        ],
        ignore_conflicts=True,
        batch_size=5_000,
    )
    segment.kind = Segment.Kind.STATIC
    segment.refresh_every = None
    segment.save(update_fields=["kind", "refresh_every", "updated_at"])
    return segment


def _dependencies_first(audiences: list[Audience]) -> list[Audience]:
    """Audiences whose segments others use come before those others."""
    uses: dict[int, set[int]] = {}
    for segment_id, used in Segment.depends_on.through.objects.filter(
        from_segment_id__in=[a.segment_id for a in audiences]
    ).values_list("from_segment_id", "to_segment_id"):
        uses.setdefault(segment_id, set()).add(used)
    ordered: list[Audience] = []
    done: set[int] = set()
    pending = list(audiences)
    while pending:
        ready = [a for a in pending if uses.get(a.segment_id, set()) <= done | {a.segment_id}] or pending[:1]
        for audience in ready:
            ordered.append(audience)
            done.add(audience.segment_id)
            pending.remove(audience)
    return ordered


def audience_members_follow(*, workspace_id: int, profile_ids: list[int]) -> int:
    """Re-evaluate these people in every current audience of the workspace, in place: after a merge
    (the survivor now holds both people's history) or an unmerge (each side its own), audiences
    list the right people at once rather than at their next refresh. Returns memberships changed."""
    ids = sorted(set(profile_ids))
    audiences = list(
        Audience.objects.filter(workspace_id=workspace_id, current_version__gt=0).select_related(
            "segment__workspace", "workspace"
        )
    )
    if not ids or not audiences:
        return 0
    ctx = compile_context(workspace=audiences[0].workspace)
    changed = 0
    for audience in _dependencies_first(audiences):
        found = segment_members_among(segment=audience.segment, ctx=ctx, profile_ids=ids)
        with transaction.atomic():
            version = Audience.objects.select_for_update().get(pk=audience.pk).current_version
            rows = AudienceMember.objects.of_version(audience_id=audience.pk, version=version)
            present = set(rows.filter(profile_id__in=ids).values_list("profile_id", flat=True))
            gone = present - found
            new = found - present
            if gone:
                rows.filter(profile_id__in=list(gone)).delete()
            if new:
                AudienceMember.objects.bulk_create(
                    [
                        AudienceMember(workspace_id=workspace_id, audience=audience, version=version, profile_id=pk)
                        for pk in sorted(new)
                    ],
                    ignore_conflicts=True,
                )
            if gone or new:
                Audience.objects.filter(pk=audience.pk).update(
                    size=rows.count(), contactable=_contactable(audience, version, timezone.now())
                )
                changed += len(gone) + len(new)
    transaction.on_commit(
        lambda: audience_members_followed.send(sender=Audience, workspace_id=workspace_id, profile_ids=ids)
    )
    return changed
