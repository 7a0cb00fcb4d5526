"""Quantification services: the index table computed by a worker, and the macro-segment it suggests."""

from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.leases import lease_fail, lease_heartbeat, lease_release, lease_take
from core.sql import statement_timeout
from customers.models import Profile
from segments.analysis import Thresholds, defining_criteria, row_rule, segment_index
from segments.compiler import compile_definition
from segments.membership import current_audience
from segments.models import Segment, SegmentAnalysis
from segments.selectors import compile_context


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
        definitions = dict(Segment.objects.filter(workspace_id=analysis.workspace_id).values_list("pk", "definition"))
        defining = defining_criteria(analysis.segment.definition, definitions=definitions)
        with statement_timeout(seconds=settings.CIBLE_TASK_STATEMENT_TIMEOUT):
            result = segment_index(
                members=members,
                base=base,
                workspace_id=analysis.workspace_id,
                thresholds=thresholds,
                defining=defining,
            )
    except Exception as exc:
        lease_fail(model=SegmentAnalysis, pk=analysis.pk, token=token, exc=exc)
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


MAX_SHARE = 0.5  # a macro-segment past half of the base is no longer a segment


def macro_segment_suggestion(*, analysis, limit: int = 5, max_share: float = MAX_SHARE) -> dict:
    """A draft macro-segment for reach that keeps the segment's character.

    The over-represented criteria (never the segment's defining ones), best excess first, are added
    one at a time as alternatives (any of them); each step reports the draft's size and share of
    the base, its precision (the share of its people who are members of the segment), its coverage
    (the share of the segment's members it holds) and its index (precision over the segment's share
    of the base, x100), so the marketer sees the trade-off of each criterion. A criterion that would
    take the draft past `max_share` of the base is not added; when even the first would, there is
    no suggestion, and the answer says why.
    """
    segment = analysis.segment
    ctx = compile_context(workspace=segment.workspace)
    base = Profile.objects.filter(workspace=segment.workspace).count()
    current = current_audience(segment=segment)
    seg_size = current.size if current else 0
    empty: dict[str, Any] = {
        "definition": None,
        "criteria": [],
        "steps": [],
        "size": 0,
        "share": None,
        "precision": None,
        "coverage": None,
        "reach": None,
        "index": None,
        "max_share": max_share,
        "reason": "",
    }
    candidates = []
    for row in analysis.rows:
        if not row["over_represented"] or row.get("defining") or row["value"] == "unknown":
            continue
        rule = row.get("rule") or row_rule(row["criterion"], row["value"])
        if rule is not None:
            candidates.append((row, rule))
    if not candidates:
        return {
            **empty,
            "reason": "No criterion outside the segment's own rules is over-represented in both index and volume.",
        }
    rules: list[dict] = []
    steps: list[dict] = []
    picked = []
    skipped = []
    for row, rule in candidates:
        if len(rules) == limit:
            break
        draft = Profile.objects.filter(workspace=segment.workspace).filter(
            compile_definition({"any": [*rules, rule]}, ctx)
        )
        size = draft.count()
        if base and size / base > max_share:
            skipped.append(row["label"] if row.get("label") else f"{row['criterion']} = {row['value']}")
            continue
        covered = draft.filter(pk__in=current.members).count() if current else 0
        rules.append(rule)
        picked.append({k: row.get(k) for k in ("criterion", "value", "label", "index", "n_seg", "excess")})
        steps.append({"added": picked[-1]["label"] or row["value"], **_figures(size, covered, seg_size, base)})
    if not rules:
        return {
            **empty,
            "reason": f"Each over-represented criterion alone covers more than {max_share:.0%} of the base "
            f"({', '.join(skipped)}): that is not a segment.",
        }
    last = steps[-1]
    return {
        "definition": {"any": rules},
        "criteria": picked,
        "steps": steps,
        **{k: last[k] for k in ("size", "share", "precision", "coverage", "index")},
        "reach": last["coverage"],
        "max_share": max_share,
        "reason": f"Left out, past {max_share:.0%} of the base: {', '.join(skipped)}." if skipped else "",
    }


def _figures(size: int, covered: int, seg_size: int, base: int) -> dict:
    precision = covered / size if size else None
    return {
        "size": size,
        "share": round(size / base, 6) if base else None,
        "precision": None if precision is None else round(precision, 6),
        "coverage": round(covered / seg_size, 6) if seg_size else None,
        "index": round(precision / (seg_size / base) * 100, 2) if precision is not None and seg_size and base else None,
    }
