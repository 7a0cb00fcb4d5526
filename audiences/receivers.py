"""How audiences take part in what lower apps do: the members segments read, a new segment's
audience, profile merges, erasure, access requests, destinations and file retention.
Connected in AudiencesConfig.ready."""

from collections.abc import Iterable, Mapping
from typing import Any

from audiences.models import Audience, AudienceExport, AudienceExportMember, AudienceMember
from segments.membership import CurrentAudience


def current_audiences(workspace_id: int, segment_ids: Iterable[int] | None) -> Mapping[int, CurrentAudience]:
    """Provider for segments: the current version of each computed audience."""
    audiences = Audience.objects.filter(workspace_id=workspace_id, current_version__gt=0)
    if segment_ids is not None:
        audiences = audiences.filter(segment_id__in=list(segment_ids))
    return {
        segment_id: CurrentAudience(
            version=version,
            size=size,
            members=AudienceMember.objects.of_version(audience_id=audience_id, version=version).values("profile_id"),
        )
        for segment_id, audience_id, version, size in audiences.values_list(
            "segment_id", "pk", "current_version", "size"
        )
    }


def audience_open(sender, *, segment, **kwargs) -> None:
    Audience.objects.create(workspace_id=segment.workspace_id, segment=segment)


def profile_merging(sender, *, journal, **kwargs) -> None:
    journal.move(model=AudienceMember, name="audience_memberships", unique_with=("audience", "version"))
    journal.move(model=AudienceExportMember, name="export_memberships", unique_with=("export",))


def profiles_regrouped(sender, *, workspace_id: int, profile_ids: list[int], **kwargs) -> None:
    """After a merge or an unmerge: the people's current memberships follow, in a worker, now."""
    from audiences.tasks import audience_members_follow_task

    audience_members_follow_task.delay(workspace_id=workspace_id, profile_ids=list(profile_ids))


def profiles_erasing(sender, *, workspace_id: int, profile_ids: list[int], external_ids: set[str], **kwargs):
    from privacy.erasure import file_rows_drop

    export_ids = AudienceExportMember.objects.filter(profile_id__in=profile_ids).values("export_id")
    files = sum(
        file_rows_drop(holder=export, key="external_id", values=external_ids)
        for export in AudienceExport.objects.filter(pk__in=export_ids).exclude(file="")
    )
    # Memberships of every version go; the export membership stays (pointing at the emptied
    # profile) so that later removals still reach the destination.
    memberships, _ = AudienceMember.objects.filter(profile_id__in=profile_ids).delete()
    return {"audience_memberships": memberships, "export_files": files}


def export_destinations(profile_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    rows = (
        AudienceExportMember.objects.filter(profile_id__in=profile_ids)
        .select_related("export")
        .order_by("export__created_at")
    )
    found: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        export = row.export
        found.setdefault(row.profile_id, []).append(
            {
                "type": "audience_export",
                "id": export.pk,
                "channel": export.channel,
                "purpose": export.purpose,
                "identifiers": export.identifiers,
                "segment": export.segment_id,
                "at": export.created_at,
                "has_file": bool(export.file),
            }
        )
    return found


def access_section(profile) -> dict[str, Any]:
    current = AudienceMember.objects.current().filter(profile=profile)
    rows = current.order_by("audience__segment_id").values_list("audience__segment_id", "audience__segment__name")
    return {"segments": [{"id": pk, "name": name} for pk, name in rows]}
