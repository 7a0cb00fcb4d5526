"""Insight jobs: asked for by the API, the admin or beat, run by a worker with their progress.

A job holds a lease while it runs (core.leases): a killed worker's job is queued again by the
workers' recovery. What the user can fix (no audience yet, too little history) fails the job
with that message; a database error is retried by the task.
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from core.leases import lease_heartbeat, lease_release, lease_take
from core.sql import is_statement_timeout, statement_timeout
from insights.clv import clv_run
from insights.features import features_refresh
from insights.lookalikes import band_segments_ensure, lookalike_compute
from insights.models import ClvRun, FeatureSet, InsightJob, Lookalike, PredictiveModel
from insights.personas import personas_compute
from insights.prediction import NotTrainable, model_train
from insights.rfm import rfm_compute
from segments.models import JobStatus

logger = logging.getLogger(__name__)


def job_request(
    *, workspace, kind: str, subject_id: int | None = None, params: dict | None = None, by=None
) -> InsightJob:
    """Queue a job; an identical job still queued or running is returned instead of a second one."""
    from insights.tasks import insight_job_run_task  # the task module imports this one

    with transaction.atomic():
        pending = (
            InsightJob.objects.select_for_update()
            .filter(workspace=workspace, kind=kind, subject_id=subject_id, params=params or {})
            .filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
            .first()
        )
        if pending is not None:
            return pending
        job = InsightJob.objects.create(
            workspace=workspace, kind=kind, subject_id=subject_id, params=params or {}, requested_by=by
        )
        if kind == InsightJob.Kind.MODEL:
            PredictiveModel.objects.filter(pk=subject_id or 0).update(status=JobStatus.QUEUED)
        if kind == InsightJob.Kind.LOOKALIKE:
            Lookalike.objects.filter(pk=subject_id or 0).update(status=JobStatus.QUEUED)
        insight_job_run_task.delay_on_commit(job_id=job.pk)
    return job


def job_run(*, job_id: int) -> InsightJob | None:
    job = InsightJob.objects.select_related("workspace").filter(pk=job_id).first()
    if job is None:
        return None
    token = lease_take(
        queryset=InsightJob.objects.filter(pk=job.pk, status=JobStatus.QUEUED),
        status=JobStatus.RUNNING,
        started_at=timezone.now(),
        progress=0,
    )
    if token is None:
        return job  # done already (a redelivered task), or running in another worker

    def progress(pct: int, step: str) -> None:
        InsightJob.objects.filter(pk=job.pk, lease_token=token).update(progress=max(0, min(99, pct)), step=step[:200])

    with lease_heartbeat(model=InsightJob, pk=job.pk, token=token):
        try:
            with statement_timeout(seconds=settings.CIBLE_TASK_STATEMENT_TIMEOUT):
                result = _run(job, progress)
        except OperationalError as exc:
            if not is_statement_timeout(exc):
                lease_release(model=InsightJob, pk=job.pk, token=token, status=JobStatus.QUEUED)
                raise  # transient: the task retries
            # Not transient: the same query would run as long again. Recorded, never retried.
            error = f"A query ran longer than {settings.CIBLE_TASK_STATEMENT_TIMEOUT:g} s and was stopped."
        except NotTrainable as exc:
            error = str(exc)  # what the user can fix, said as is
        except Exception as exc:
            logger.exception("Insight job %s failed", job.pk)
            error = f"{type(exc).__name__}: {exc}"[:2000]
        else:
            lease_release(
                model=InsightJob,
                pk=job.pk,
                token=token,
                status=JobStatus.READY,
                progress=100,
                step="Done",
                result=result,
                finished_at=timezone.now(),
            )
            return InsightJob.objects.get(pk=job.pk)
        _subject_failed(job, error)
        lease_release(
            model=InsightJob, pk=job.pk, token=token, status=JobStatus.FAILED, error=error, finished_at=timezone.now()
        )
    return InsightJob.objects.get(pk=job.pk)


def _subject_failed(job: InsightJob, message: str) -> None:
    if job.kind == InsightJob.Kind.MODEL:
        PredictiveModel.objects.filter(pk=job.subject_id or 0).update(status=JobStatus.FAILED, error=message)
    elif job.kind == InsightJob.Kind.LOOKALIKE:
        Lookalike.objects.filter(pk=job.subject_id or 0).update(status=JobStatus.FAILED, error=message)


def _run(job: InsightJob, progress) -> dict[str, Any]:
    workspace = job.workspace
    if job.kind == InsightJob.Kind.FEATURES:
        feature_set = features_refresh(workspace=workspace, full=bool(job.params.get("full")), progress=progress)
        return {
            "version": feature_set.version,
            "profiles": feature_set.profiles,
            "refreshed": feature_set.refreshed,
            "full": feature_set.full,
            "columns": len(feature_set.definition),
            "duration_ms": feature_set.duration_ms,
        }
    if job.kind == InsightJob.Kind.RFM:
        as_of = job.params.get("as_of")
        run = rfm_compute(
            workspace=workspace, as_of=datetime.fromisoformat(as_of) if as_of else None, progress=progress
        )
        return {"run": run.pk, "version": run.version, "customers": run.customers}
    if job.kind == InsightJob.Kind.PERSONAS:
        personas = personas_compute(
            workspace=workspace, facets=job.params.get("facets", "all"), k=job.params.get("k"), progress=progress
        )
        return {
            "run": personas.pk,
            "version": personas.version,
            "k": personas.k,
            "stability_ari": personas.stability_ari,
        }
    if job.kind == InsightJob.Kind.MODEL:
        model = PredictiveModel.objects.select_related("segment", "workspace").get(pk=job.subject_id or 0)
        PredictiveModel.objects.filter(pk=model.pk).update(status=JobStatus.RUNNING)
        model = model_train(model=model, progress=progress)
        PredictiveModel.objects.filter(pk=model.pk).update(status=JobStatus.READY)
        return {"model": model.pk, "version": model.version, "auc": model.metrics.get("auc")}
    if job.kind == InsightJob.Kind.LOOKALIKE:
        lookalike = Lookalike.objects.select_related("seed__audience", "workspace").get(pk=job.subject_id or 0)
        Lookalike.objects.filter(pk=lookalike.pk).update(status=JobStatus.RUNNING)
        band_segments_ensure(lookalike=lookalike)
        lookalike = lookalike_compute(lookalike=lookalike, progress=progress)
        Lookalike.objects.filter(pk=lookalike.pk).update(status=JobStatus.READY)
        return {"lookalike": lookalike.pk, "version": lookalike.version, "eligible": lookalike.eligible}
    if job.kind == InsightJob.Kind.CLV:
        params = dict(job.params)
        as_of = params.pop("as_of", None)
        clv = clv_run(
            workspace=workspace,
            as_of=datetime.fromisoformat(as_of) if as_of else None,
            progress=progress,
            **params,
        )
        return {"run": clv.pk, "version": clv.version, "status": clv.status, "customers": clv.customers}
    raise ValueError(f"Unknown job kind {job.kind!r}")


# Beat: features are brought up to date this often (incrementally, unless the definition changed).
FEATURES_EVERY = timedelta(hours=1)


def features_refresh_due(*, now=None) -> list[int]:
    """Queue a features refresh for every workspace whose table is older than FEATURES_EVERY
    (or that has models, personas or RFM but no features yet)."""
    now = now or timezone.now()
    queued = []
    for feature_set in FeatureSet.objects.select_related("workspace").filter(as_of__lt=now - FEATURES_EVERY):
        job_request(workspace=feature_set.workspace, kind=InsightJob.Kind.FEATURES)
        queued.append(feature_set.workspace_id)
    return queued


# Beat: lifetime values are fitted again this often, with the settings of the workspace's last run.
CLV_EVERY = timedelta(days=1)


def clv_refresh_due(*, now=None) -> list[int]:
    """Queue a CLV run for every workspace whose latest ready run is older than CLV_EVERY (a
    workspace that never asked for one is left alone)."""
    now = now or timezone.now()
    queued = []
    # Each workspace's latest ready run, in one query.
    newer = ClvRun.objects.filter(
        workspace_id=OuterRef("workspace_id"), status=JobStatus.READY, version__gt=OuterRef("version")
    )
    latest = ClvRun.objects.filter(status=JobStatus.READY).exclude(Exists(newer)).select_related("workspace")
    for run in latest.filter(as_of__lt=now - CLV_EVERY).order_by("workspace_id"):
        settings = {
            "unit": run.unit,
            "horizon_months": run.horizon_months,
            "discount_rate": run.discount_rate,
            "purchase_days": run.purchase_days,
            "holdout_days": run.holdout_days,
        }
        job_request(workspace=run.workspace, kind=InsightJob.Kind.CLV, params=settings)
        queued.append(run.workspace_id)
    return queued
