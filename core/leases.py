"""Leases for long jobs: one holder at a time, kept alive by a heartbeat, taken back when silent.

A job row (an audience computation, an analysis, an export, an import, a report) carries a
lease: a token and an expiry. A worker takes it with one conditional UPDATE (no live lease),
renews it every HEARTBEAT_SECONDS from a thread while it works, and releases it when done.
A worker killed with SIGKILL stops renewing: within LEASE_SECONDS its lease expires, and the
recovery tick, which every worker runs (config.observability), marks the lost run failed and
queues the job again. Writes that make a result live require the holder's token, so a stale
run whose lease was taken over can never overwrite the new holder's work or clear its lease.
"""

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial

from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

logger = logging.getLogger(__name__)

# A minute of silence and the lease is gone; renewed four times a minute meanwhile, so a
# worker stalled by a long statement or a slow database still keeps it.
LEASE_SECONDS = 60
HEARTBEAT_SECONDS = 15
LEASE = timedelta(seconds=LEASE_SECONDS)


class LeasedJob(models.Model):
    """The lease fields of a job row."""

    lease_token = models.UUIDField(null=True, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True


def lease_free() -> Q:
    """The rows whose lease is free: never taken, released, or expired."""
    return Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=timezone.now())


def lease_expired() -> Q:
    """The rows whose holder went silent: a lease still set, past its expiry."""
    return Q(lease_token__isnull=False, lease_expires_at__lte=timezone.now())


def lease_take(*, queryset: models.QuerySet, **changes) -> uuid.UUID | None:
    """Take the lease of the row of `queryset` when it is free, applying `changes` in the same
    UPDATE; the token, or None when someone else holds it."""
    token = uuid.uuid4()
    taken = queryset.filter(lease_free()).update(lease_token=token, lease_expires_at=timezone.now() + LEASE, **changes)
    return token if taken else None


def lease_release(*, model: type[models.Model], pk: int, token: uuid.UUID, **changes) -> bool:
    """Release the lease (with `changes`) only when `token` still holds it."""
    return bool(
        model._default_manager.filter(pk=pk, lease_token=token).update(
            lease_token=None, lease_expires_at=None, **changes
        )
    )


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
                renewed = self.model._default_manager.filter(pk=self.pk, lease_token=self.token).update(
                    lease_expires_at=timezone.now() + LEASE
                )
                if not renewed:
                    self.lost = True
                    return
        except Exception:  # a database hiccup: the lease may lapse, the token still guards the result
            logger.exception("Lease heartbeat of %s %s failed", self.model._meta.label, self.pk)
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

# name -> function that fails the lost runs of one kind of job and queues them again; returns how many.
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


def job_recoverer(*, model: type[models.Model], requeue: dict, enqueue: Callable[[int], object]) -> Callable[[], int]:
    """A recovery for a job model whose runs hold a lease: each lapsed row gets `requeue` (its
    status back to queued), its lease cleared, and its task queued again after commit."""

    def recover() -> int:
        recovered = 0
        lapsed = model._default_manager.filter(lease_expired()).values_list("pk", "lease_token")
        for pk, token in lapsed:
            with transaction.atomic():
                taken = (
                    model._default_manager.filter(pk=pk, lease_token=token)
                    .filter(lease_expired())
                    .update(lease_token=None, lease_expires_at=None, **requeue)
                )
                if taken:
                    transaction.on_commit(partial(enqueue, pk))
                    recovered += taken
        return recovered

    return recover
