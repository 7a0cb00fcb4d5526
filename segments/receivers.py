"""How segments take part in profile merges, erasure and access requests (SegmentsConfig.ready)."""

import json
from typing import Any

from django.utils import timezone

from customers.selectors import typed_values as customer_values
from segments.models import ManualMember, SegmentAnalysis
from segments.tasks import segment_analysis_run_task


def profile_merging(sender, *, journal, **kwargs) -> None:
    # Where both people were set by hand in one segment, the survivor's own choice stands.
    journal.move(model=ManualMember, name="manual_memberships", unique_with=("segment",))


def profiles_erasing(sender, *, workspace_id: int, profile_ids: list[int], **kwargs) -> dict[str, int]:
    deleted, _ = ManualMember.objects.filter(profile_id__in=profile_ids).delete()
    return {"manual_memberships": deleted, "segment_analyses": analyses_recompute(workspace_id, profile_ids)}


def analyses_recompute(workspace_id: int, profile_ids: list[int]) -> int:
    """The index tables that show a value these people had (their region, an interest, an answer)
    are emptied now and computed again once the erasure is committed: a value that fewer than
    AGGREGATE_FLOOR people share afterwards leaves the table. (The analyses of a workspace are one
    per segment: a few rows, read whole.)"""
    theirs = typed_values(profile_ids)
    stale = [
        pk
        for pk, rows in SegmentAnalysis.objects.filter(workspace_id=workspace_id).values_list("pk", "rows")
        if any((row["criterion"], row["value"]) in theirs for row in rows)
    ]
    if not stale:
        return 0
    SegmentAnalysis.objects.filter(pk__in=stale).update(
        rows=[], status=SegmentAnalysis.Status.QUEUED, requested_at=timezone.now()
    )
    for segment_id in SegmentAnalysis.objects.filter(pk__in=stale).values_list("segment_id", flat=True):
        segment_analysis_run_task.delay_on_commit(segment_id=segment_id)
    return len(stale)


def typed_values(profile_ids: list[int]) -> set[tuple[str, str]]:
    """(criterion, value) of the index table for what these people typed or were given as text."""
    theirs = customer_values(profile_ids=profile_ids)
    found = {("region", region) for region in theirs.regions}
    found.update(("interest", item) for item in theirs.attributes.get("interests", []) if isinstance(item, str))
    found.update(
        ("survey", json.dumps({"survey": survey, "question": question, "answer": answer}))
        for survey, question, answer in theirs.answers
    )
    return found


def access_section(profile) -> dict[str, Any]:
    rows = ManualMember.objects.filter(profile=profile).order_by("created_at", "pk")
    return {"manual_segment_memberships": list(rows.values("segment_id", "segment__name", "action", "created_at"))}
