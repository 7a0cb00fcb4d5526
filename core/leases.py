"""Leases for long jobs: one holder at a time, kept alive by a heartbeat, taken back when silent.

A job row (an audience computation, an analysis, an export, an import, a report) carries a
lease: a token and an expiry. A worker takes it with one conditional UPDATE (no live lease),
renews it every HEARTBEAT_SECONDS from a thread while it works, and releases it when done.
A worker killed with SIGKILL stops renewing: within LEASE_SECONDS its lease expires, and the
recovery tick, which every worker runs (config.observability), queues the job again, or fails
it after MAX_RECOVERIES lost runs in a row (a job that kills its worker every time). Times
are the database's clock, so workers on several machines agree whatever their own clocks.
Writes that make a result live require the holder's token, so a stale run whose lease was
taken over can never overwrite the new holder's work or clear its lease.
"""

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import ClassVar

from django.conf import settings
from django.db import OperationalError, connection, models, transaction
from django.db.models import F, Q
from django.db.models.functions import Now

from core.sql import is_statement_timeout

logger = logging.getLogger(__name__)

# A minute of silence and the lease is gone; renewed four times a minute meanwhile, so a
# worker stalled by a long statement or a slow database still keeps it.
LEASE_SECONDS = 60
HEARTBEAT_SECONDS = 15
LEASE = timedelta(seconds=LEASE_SECONDS)
# Lost runs in a row after which a job is failed rather than queued again.
MAX_RECOVERIES = 3
LOST = f"Stopped: its worker was lost {MAX_RECOVERIES} times in a row while running it."


class LeasedJob(models.Model):
    """The lease fields of a job row, and how the recovery queues a lapsed one again: every
    concrete subclass is taken back by `leased_jobs_register` (core's AppConfig.ready)."""

    lease_jobs: ClassVar[str]  # what the recovery's log and counts call them, e.g. "imports"
    lease_task: ClassVar[str]  # the task that runs one, e.g. "customers.tasks.import_job_run_task"
    lease_task_kwargs: ClassVar[dict[str, str]] = {"job_id": "pk"}  # task keyword -> model field
    lease_queued_status: ClassVar[str] = "queued"
    lease_failure_field: ClassVar[str] = "error"

    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    lease_recoveries = models.PositiveSmallIntegerField(
        default=0, editable=False, help_text="Runs lost in a row (worker killed); reset when a run ends."
    )

    class Meta:
        abstract = True


def lease_until() -> models.Expression:
    """The expiry of a lease taken or renewed now, by the database's clock."""
    return Now() + LEASE


def lease_free() -> Q:
    """The rows whose lease is free: never taken, released, or expired."""
    return Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=Now())


def lease_expired() -> Q:
    """The rows whose holder went silent: a lease still set, past its expiry."""
    return Q(lease_token__isnull=False, lease_expires_at__lte=Now())


def lease_take(*, queryset: models.QuerySet, **changes) -> uuid.UUID | None:
    """Take the lease of the row of `queryset` when it is free, applying `changes` in the same
    UPDATE; the token, or None when someone else holds it (or the row is not in `queryset`)."""
    token = uuid.uuid4()
    taken = queryset.filter(lease_free()).update(lease_token=token, lease_expires_at=lease_until(), **changes)
    return token if taken else None


def lease_release(*, model: type[models.Model], pk: int, token: uuid.UUID, **changes) -> bool:
    """Release the lease (with `changes`) only when `token` still holds it; False when it was taken over."""
    if any(f.name == "lease_recoveries" for f in model._meta.concrete_fields):
        changes.setdefault("lease_recoveries", 0)
    return bool(
        model._default_manager.filter(pk=pk, lease_token=token).update(
            lease_token=None, lease_expires_at=None, **changes
        )
    )


UNEXPECTED = "Unexpected error ({}); the team has been told."


def lease_fail(
    *,
    model: type[models.Model],
    pk: int,
    token: uuid.UUID,
    exc: BaseException,
    expected: tuple[type[BaseException], ...] = (),
    **changes,
) -> None:
    """What a leased job does when its work raised `exc` (call it from the `except` block):

    - a transient database error (a dropped connection, a deadlock): the job goes back to its
      queued status with the lease released, and `exc` is raised again so that the task retries;
    - a statement its timeout stopped: failed, saying so (the same query would run as long again);
    - an `expected` refusal (a bad file, a bad parameter): failed with its message;
    - anything else: logged with its traceback, failed naming the error's type only.
    The failure goes in the model's `lease_failure_field`, with `changes` (a finishing time...)."""
    if isinstance(exc, OperationalError) and not is_statement_timeout(exc):
        lease_release(model=model, pk=pk, token=token, status=model.lease_queued_status)  # type: ignore[attr-defined]
        raise exc
    if is_statement_timeout(exc):
        message = f"A query ran longer than {settings.CIBLE_TASK_STATEMENT_TIMEOUT:g} s and was stopped."
    elif isinstance(exc, expected):
        message = str(exc)
    else:
        logger.error("%s %s failed", model._meta.verbose_name, pk, exc_info=exc)
        message = UNEXPECTED.format(type(exc).__name__)
    field = model.lease_failure_field  # type: ignore[attr-defined]
    lease_release(model=model, pk=pk, token=token, status="failed", **{field: message[:2000]}, **changes)


class Heartbeat:
    """Renews a lease from a thread while the job works; `lost` once another holder took it."""

    def __init__(self, *, model: type[models.Model], pk: int, token: uuid.UUID, every: float) -> None:
        self.model, self.pk, self.token, self.every = model, pk, token, every
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{model._meta.label}-{pk}", daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every):
                try:
                    renewed = self.model._default_manager.filter(pk=self.pk, lease_token=self.token).update(
                        lease_expires_at=lease_until()
                    )
                except Exception:
                    # A database hiccup: keep beating; the lease has a minute of slack, and the
                    # token still guards the result if it lapses meanwhile.
                    logger.exception("Lease heartbeat of %s %s failed", self.model._meta.label, self.pk)
                    connection.close()
                    continue
                if not renewed:
                    self.lost = True
                    return
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.every + 5)


@contextmanager
def lease_heartbeat(
    *, model: type[models.Model], pk: int, token: uuid.UUID, every: float = HEARTBEAT_SECONDS
) -> Iterator[Heartbeat]:
    with Heartbeat(model=model, pk=pk, token=token, every=every) as beat:
        yield beat


# --- recovery ------------------------------------------------------------------------------

# name -> function that takes back one kind of job's lapsed leases; returns how many.
_recoverers: dict[str, Callable[[], int]] = {}


def lease_recoverer_register(*, name: str, recover: Callable[[], int]) -> None:
    _recoverers[name] = recover


def leases_recover() -> dict[str, int]:
    """Take back every expired lease (run by each worker every HEARTBEAT_SECONDS)."""
    recovered = {}
    for name, recover in sorted(_recoverers.items()):
        try:
            count = recover()
        except Exception:
            logger.exception("Lease recovery of %s failed", name)
            continue
        if count:
            logger.warning("Recovered %d %s job(s) whose worker went silent", count, name)
            recovered[name] = count
    return recovered


def job_recoverer(
    *, model: type[models.Model], requeue: dict, give_up: dict, enqueue: Callable[[int], object]
) -> Callable[[], int]:
    """A recovery for a job model whose runs hold a lease (`LeasedJob`): each lapsed row gets
    `requeue` (its status back to queued) and its task queued again, or `give_up` (failed, with
    the reason) once MAX_RECOVERIES runs in a row were lost."""

    def recover() -> int:
        recovered = 0
        lapsed = model._default_manager.filter(lease_expired()).values_list("pk", "lease_token", "lease_recoveries")
        for pk, token, recoveries in lapsed:
            with transaction.atomic():
                row = model._default_manager.filter(pk=pk, lease_token=token).filter(lease_expired())
                if recoveries + 1 >= MAX_RECOVERIES:
                    recovered += row.update(lease_token=None, lease_expires_at=None, lease_recoveries=0, **give_up)
                    continue
                taken = row.update(
                    lease_token=None, lease_expires_at=None, lease_recoveries=F("lease_recoveries") + 1, **requeue
                )
                if taken:
                    # Queued inside the transaction: if the broker refuses, nothing changed and the
                    # next tick tries again; a task that starts before the commit waits on the row.
                    enqueue(pk)
                    recovered += taken
        return recovered

    return recover


def leased_jobs_register() -> None:
    """A recovery for every installed `LeasedJob` model, from what the model declares."""
    from celery import current_app
    from django.apps import apps

    for model in apps.get_models():
        if not issubclass(model, LeasedJob):
            continue

        def enqueue(pk: int, model: type[LeasedJob] = model) -> None:
            row = model._default_manager.values(*model.lease_task_kwargs.values()).get(pk=pk)
            kwargs = {keyword: row[field] for keyword, field in model.lease_task_kwargs.items()}
            current_app.tasks[model.lease_task].delay(**kwargs)

        lease_recoverer_register(
            name=model.lease_jobs,
            recover=job_recoverer(
                model=model,
                requeue={"status": model.lease_queued_status},
                give_up={"status": "failed", model.lease_failure_field: LOST},
                enqueue=enqueue,
            ),
        )
