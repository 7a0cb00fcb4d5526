"""Quantification services: the index table computed by a worker, and the macro-segment it suggests."""

import logging

from django.db import OperationalError, transaction
from django.utils import timezone

from core.leases import lease_heartbeat, lease_release, lease_take
from customers.models import Profile
from segments.analysis import AGE_BANDS, Thresholds, segment_index
from segments.compiler import compile_definition
from segments.membership import current_audience
from segments.models import Segment, SegmentAnalysis
from segments.selectors import compile_context

logger = logging.getLogger(__name__)


def segment_analysis_request(
    *, segment: Segment, min_index: float = 120.0, min_count: int = 100, min_abs_z: float = 2.0
):
    """Queue the index table of the segment's current audience, with these thresholds."""
    from segments.tasks import segment_analysis_run_task  # the task module imports this one

    with transaction.atomic():
        analysis, _ = SegmentAnalysis.objects.select_for_update().get_or_create(segment=segment)
        analysis.status = SegmentAnalysis.Status.QUEUED
        analysis.min_index, analysis.min_count, analysis.min_abs_z = min_index, min_count, min_abs_z
        analysis.requested_at = timezone.now()
        analysis.save()
        segment_analysis_run_task.delay_on_commit(segment_id=segment.pk)
    return analysis


def segment_analysis_run(*, segment_id: int) -> SegmentAnalysis | None:
    """Compute and store the index table (set-based GROUP BYs over the audience and the base).

    The run holds the analysis's lease, renewed while it works; a run of a killed worker is
    queued again by the workers' recovery, and only the lease holder writes the result.
    """
    analysis = SegmentAnalysis.objects.select_related("segment").filter(segment_id=segment_id).first()
    if analysis is None:
        return None
    started = timezone.now()
    token = lease_take(
        queryset=SegmentAnalysis.objects.filter(pk=analysis.pk, status=SegmentAnalysis.Status.QUEUED),
        status=SegmentAnalysis.Status.RUNNING,
    )
    if token is None:
        return analysis  # computed already (a redelivered task), or being computed by another worker
    with lease_heartbeat(model=SegmentAnalysis, pk=analysis.pk, token=token):
        _analyse(analysis, token)
    # Asked again while it ran (other thresholds): compute once more, the latest request wins.
    if SegmentAnalysis.objects.filter(pk=analysis.pk, requested_at__gt=started).exists():
        from segments.tasks import segment_analysis_run_task  # the task module imports this one

        SegmentAnalysis.objects.filter(pk=analysis.pk).update(status=SegmentAnalysis.Status.QUEUED)
        segment_analysis_run_task.delay_on_commit(segment_id=segment_id)
    return SegmentAnalysis.objects.get(pk=analysis.pk)


def _analyse(analysis: SegmentAnalysis, token) -> None:
    current = current_audience(segment=analysis.segment)
    if current is None:
        lease_release(
            model=SegmentAnalysis,
            pk=analysis.pk,
            token=token,
            status=SegmentAnalysis.Status.FAILED,
            error="The segment's audience has not been computed yet.",
        )
        return
    try:
        members = Profile.objects.filter(pk__in=current.members)
        base = Profile.objects.filter(workspace_id=analysis.workspace_id)
        thresholds = Thresholds(analysis.min_index, analysis.min_count, analysis.min_abs_z)
        result = segment_index(members=members, base=base, workspace_id=analysis.workspace_id, thresholds=thresholds)
    except OperationalError:
        lease_release(model=SegmentAnalysis, pk=analysis.pk, token=token, status=SegmentAnalysis.Status.QUEUED)
        raise  # transient: the task retries
    except Exception as exc:
        logger.exception("Analysis of segment %s failed", analysis.segment_id)
        lease_release(
            model=SegmentAnalysis,
            pk=analysis.pk,
            token=token,
            status=SegmentAnalysis.Status.FAILED,
            error=str(exc)[:2000],
        )
        return
    lease_release(
        model=SegmentAnalysis,
        pk=analysis.pk,
        token=token,
        status=SegmentAnalysis.Status.READY,
        audience_version=current.version,
        segment_size=result["segment_size"],
        base_size=result["base_size"],
        rows=result["rows"],
        error="",
        computed_at=timezone.now(),
    )


_CHANNEL_EVENTS = ["page_view", "product_view", "app_open", "email_open", "store_visit", "purchase"]
# Dimension of an index row -> how a rule selects it.
_RULE_FOR = {
    "gender": lambda v: {"field": "gender", "op": "eq", "value": v},
    "socio_professional_category": lambda v: {"field": "socio_professional_category", "op": "eq", "value": v},
    "region": lambda v: {"field": "region", "op": "eq", "value": v},
    "lifecycle_stage": lambda v: {"field": "lifecycle_stage", "op": "eq", "value": v},
    "interest": lambda v: {"field": "attributes.interests", "op": "contains", "value": v},
    "channel": lambda v: {"any": [{"event": t, "channel": v, "within": "P90D"} for t in _CHANNEL_EVENTS]},
}


def _age_rule(value: str) -> dict | None:
    for label, low, high in AGE_BANDS:
        if label == value:
            return (
                {"field": "age", "op": "between", "value": [low, high]}
                if high < 200
                else {"field": "age", "op": "gte", "value": low}
            )
    return None


def macro_segment_suggestion(*, analysis, limit: int = 5) -> dict:
    """A draft macro-segment: the criteria over-represented in index and volume, any of them (for reach)."""
    rules = []
    picked = []
    for row in analysis.rows:
        if not row["over_represented"] or row["value"] == "unknown":
            continue
        rule = (
            _age_rule(row["value"])
            if row["criterion"] == "age_band"
            else _RULE_FOR.get(row["criterion"], lambda v: None)(row["value"])
        )
        if rule is None:
            continue
        rules.append(rule)
        picked.append({k: row[k] for k in ("criterion", "value", "index", "n_seg", "excess")})
        if len(rules) == limit:
            break
    if not rules:
        return {"definition": None, "criteria": [], "size": 0, "share": None, "reach": None}
    definition = {"any": rules}
    segment = analysis.segment
    ctx = compile_context(workspace=segment.workspace)
    draft = Profile.objects.filter(workspace=segment.workspace).filter(compile_definition(definition, ctx))
    size = draft.count()
    current = current_audience(segment=segment)
    covered = draft.filter(pk__in=current.members).count() if current else 0
    base = Profile.objects.filter(workspace=segment.workspace).count()
    return {
        "definition": definition,
        "criteria": picked,
        "size": size,
        "share": round(size / base, 6) if base else None,
        "reach": round(covered / current.size, 6) if current and current.size else None,
    }
