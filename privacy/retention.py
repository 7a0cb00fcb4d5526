"""Retention: each workspace's policy applied by a scheduled task, in bounded batches.

- Events older than `events_months` are deleted (with the clicks and waiting sends they carry).
- Prospects with no qualifying contact for `inactive_prospect_months` are erased. A qualifying
  contact is something the person did: an order, a consent statement, or any event but the
  passive ones (an e-mail open, which mail clients fire on their own, or an ad view). A click
  counts. The profile's creation is its first contact.
- Export, delivery, imported and access-request files older than `export_files_days` are deleted.

Each call purges at most one batch of each kind and says whether more is left; the task then
queues itself again, so a large backlog never holds one transaction or one worker for long.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, Model, OuterRef
from django.utils import timezone

from customers.models import Event, EventType, ImportJob, LifecycleStage, Order, Profile
from privacy.audit import Action, audit_record
from privacy.erasure import profiles_erase
from privacy.models import ConsentRecord, DataSubjectRequest, RetentionPolicy
from privacy.registry import retained_files
from privacy.requests import add_months

# Batch sizes keep one batch to one short transaction: a batch of events is one indexed
# range read and one DELETE by primary key; a batch of prospects is one erasure (about twenty
# set-based statements). Not yet benchmarked at scale: see bench/README.md.
EVENT_BATCH = 5_000
PROSPECT_BATCH = 1_000
FILE_BATCH = 200
PASSIVE_EVENTS = (EventType.EMAIL_OPEN, EventType.AD_VIEW)


def retention_policy(*, workspace) -> RetentionPolicy:
    """The workspace's policy; the defaults, unsaved, until it is first saved (a read writes nothing)."""
    return RetentionPolicy.objects.filter(workspace=workspace).first() or RetentionPolicy(workspace=workspace)


def retention_policy_ensure(*, workspace) -> RetentionPolicy:
    policy, _ = RetentionPolicy.objects.get_or_create(workspace=workspace)
    return policy


@transaction.atomic
def retention_policy_update(*, workspace, by, **fields) -> RetentionPolicy:
    policy = retention_policy_ensure(workspace=workspace)
    old = {name: getattr(policy, name) for name in fields}
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.updated_by = by
    policy.full_clean()
    policy.save()
    audit_record(
        workspace_id=workspace.pk,
        actor=by,
        action=Action.RETENTION_CHANGED,
        object_type="retention_policy",
        object_id=policy.pk,
        detail={"old": old, "new": fields},
    )
    return policy


def inactive_prospects(*, workspace_id: int, cutoff: datetime):
    """Prospects whose last qualifying contact is before `cutoff` (none since)."""
    person = {"workspace_id": workspace_id, "profile_id": OuterRef("pk")}
    return (
        Profile.objects.filter(
            workspace_id=workspace_id,
            lifecycle_stage=LifecycleStage.PROSPECT,
            erased_at__isnull=True,
            created_at__lt=cutoff,
        )
        .exclude(Exists(Event.objects.filter(**person, occurred_at__gte=cutoff).exclude(type__in=PASSIVE_EVENTS)))
        .exclude(Exists(Order.objects.filter(**person, ordered_at__gte=cutoff)))
        .exclude(Exists(ConsentRecord.objects.filter(profile_id=OuterRef("pk"), recorded_at__gte=cutoff)))
    )


def retention_purge(*, workspace_id: int, now: datetime | None = None) -> tuple[dict[str, int], bool]:
    """Purge one bounded batch of each kind past the workspace's retention; (counts, more left)."""
    now = now or timezone.now()
    policy = RetentionPolicy.objects.filter(workspace_id=workspace_id).first()
    if policy is None:
        return {}, False
    done: dict[str, int] = {}
    more = False
    if policy.events_months:
        cutoff = add_months_dt(now, -policy.events_months)
        ids = list(
            Event.objects.filter(workspace_id=workspace_id, occurred_at__lt=cutoff)
            .order_by()
            .values_list("pk", flat=True)[:EVENT_BATCH]
        )
        if ids:
            # The ORM delete follows the clicks and waiting sends that hang on these events.
            Event.objects.filter(pk__in=ids).delete()
            done["events"] = len(ids)
            more |= len(ids) == EVENT_BATCH
    if policy.inactive_prospect_months:
        cutoff = add_months_dt(now, -policy.inactive_prospect_months)
        ids = list(
            inactive_prospects(workspace_id=workspace_id, cutoff=cutoff)
            .order_by("pk")
            .values_list("pk", flat=True)[:PROSPECT_BATCH]
        )
        if ids:
            profiles_erase(workspace_id=workspace_id, profile_ids=ids)
            done["inactive_prospects"] = len(ids)
            more |= len(ids) == PROSPECT_BATCH
    if policy.export_files_days:
        n, left = _purge_files(workspace_id, now - timedelta(days=policy.export_files_days))
        if n:
            done["files"] = n
        more |= left
    if done:
        RetentionPolicy.objects.filter(pk=policy.pk).update(last_purge_at=now, last_purge=done)
        audit_record(
            workspace_id=workspace_id,
            actor=None,
            action=Action.RETENTION_PURGED,
            object_type="retention_policy",
            object_id=policy.pk,
            detail=done,
        )
    return done, more


def add_months_dt(moment: datetime, months: int) -> datetime:
    day = add_months(moment.date(), months)
    return moment.replace(year=day.year, month=day.month, day=day.day)


def _purge_files(workspace_id: int, cutoff: datetime) -> tuple[int, bool]:
    purged = 0
    left = False
    # Export and delivery files are registered by the apps that write them.
    files: list[tuple[type[Model], str, str]] = [*retained_files, (DataSubjectRequest, "export_file", "completed_at")]
    for model, field, stamp in files:
        rows = list(
            model._default_manager.filter(workspace_id=workspace_id, **{f"{stamp}__lt": cutoff})
            .exclude(**{field: ""})
            .order_by("pk")[:FILE_BATCH]
        )
        for row in rows:
            getattr(row, field).delete(save=False)
        model._default_manager.filter(pk__in=[r.pk for r in rows]).update(**{field: ""})
        purged += len(rows)
        left |= len(rows) == FILE_BATCH
    jobs = ImportJob.objects.filter(workspace_id=workspace_id, created_at__lt=cutoff).exclude(content="")
    ids = list(jobs.order_by("pk").values_list("pk", flat=True)[:FILE_BATCH])
    purged += ImportJob.objects.filter(pk__in=ids).update(content="", errors=[])
    left |= len(ids) == FILE_BATCH
    return purged, left


def retention_workspaces() -> list[int]:
    return list(RetentionPolicy.objects.order_by("workspace_id").values_list("workspace_id", flat=True))
