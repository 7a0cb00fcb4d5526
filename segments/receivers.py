"""How segments take part in profile merges, erasure and access requests (SegmentsConfig.ready)."""

from typing import Any

from core.sql import rows_reassign
from segments.models import ManualMember


def profile_merging(sender, *, survivor, merged, **kwargs) -> dict[str, int]:
    # Where both people were set by hand in one segment, the survivor's own choice stands.
    return {
        "manual_memberships": rows_reassign(
            model=ManualMember, survivor=survivor, merged=merged, unique_with=("segment",)
        )
    }


def profiles_erasing(sender, *, profile_ids: list[int], **kwargs) -> dict[str, int]:
    deleted, _ = ManualMember.objects.filter(profile_id__in=profile_ids).delete()
    return {"manual_memberships": deleted}


def access_section(profile) -> dict[str, Any]:
    rows = ManualMember.objects.filter(profile=profile).order_by("created_at", "pk")
    return {"manual_segment_memberships": list(rows.values("segment_id", "segment__name", "action", "created_at"))}
