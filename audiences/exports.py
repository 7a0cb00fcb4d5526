"""Consent-gated exports of an audience.

Only the members whose consent covers the export's purpose and channel at the
moment of the export are written. Identifiers are normalised (trimmed,
lower-cased, phones in E.164) and, for ad platforms, SHA-256 hashed as they
expect. The export row is the log: who, when, which version, how many.
"""

import io
import json

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Value
from django.http import FileResponse, Http404
from django.utils import timezone
from django.utils.translation import gettext

from accounts.roles import Capability, role_can
from audiences.errors import AudienceErrorCode
from audiences.models import AudienceExport, AudienceExportMember, AudienceMember
from core import csvfiles
from core.errors import CommonErrorCode, json_literal
from core.leases import lease_fail, lease_heartbeat, lease_release, lease_take
from core.sql import insert_select
from customers.models import Channel, Profile
from customers.normalise import normalised_identifiers, sha256_identifier
from privacy.audit import Action, audit_record
from privacy.models import ConsentPurpose
from privacy.selectors import profiles_reachable
from segments.models import Segment

EXPORT_CHUNK = 5_000  # rows fetched per round trip while the file is written


def export_request(
    *, segment: Segment, purpose: str, channel: str, format: str, identifiers: str, by, role: str | None
) -> AudienceExport:
    from audiences.tasks import audience_export_run_task

    errors = {}
    if purpose not in ConsentPurpose.values:
        errors["purpose"] = ValidationError(
            gettext("Unknown purpose %(value)s.") % {"value": json_literal(purpose)},
            code=CommonErrorCode.INVALID_CHOICE,
        )
    if channel not in Channel.values:
        errors["channel"] = ValidationError(
            gettext("Unknown channel %(value)s.") % {"value": json_literal(channel)},
            code=CommonErrorCode.INVALID_CHOICE,
        )
    if identifiers == AudienceExport.Identifiers.PLAIN and not role_can(role, Capability.EXPORT_PLAIN):
        errors["identifiers"] = ValidationError(
            gettext("Your role may export hashed identifiers only."), code=AudienceErrorCode.FORBIDDEN
        )
    if segment.audience.current_version == 0:
        errors["non_field_errors"] = ValidationError(
            gettext("Compute the audience first."), code=AudienceErrorCode.NO_AUDIENCE
        )
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        export = AudienceExport.objects.create(
            workspace_id=segment.workspace_id,
            segment=segment,
            purpose=purpose,
            channel=channel,
            format=format,
            identifiers=identifiers,
            created_by=by,
        )
        audit_record(
            workspace_id=segment.workspace_id,
            actor=by,
            action=Action.EXPORT_REQUESTED,
            object_type="audience_export",
            object_id=export.pk,
            detail={"segment": segment.pk, "purpose": purpose, "channel": channel, "identifiers": identifiers},
        )
        audience_export_run_task.delay_on_commit(export_id=export.pk)
    return export


def export_run(*, export_id: int) -> AudienceExport | None:
    export = AudienceExport.objects.select_related("segment__audience", "workspace").filter(pk=export_id).first()
    if export is None or export.status not in (AudienceExport.Status.QUEUED, AudienceExport.Status.RUNNING):
        return export
    token = lease_take(
        queryset=AudienceExport.objects.filter(
            pk=export.pk, status__in=[AudienceExport.Status.QUEUED, AudienceExport.Status.RUNNING]
        ),
        status=AudienceExport.Status.RUNNING,
    )
    if token is None:
        return export  # another worker is writing it
    with lease_heartbeat(model=AudienceExport, pk=export.pk, token=token):
        return _export(export, token)


def _export(export: AudienceExport, token) -> AudienceExport:
    """Write the file and its members; only the lease holder records the outcome."""
    audience = export.segment.audience
    version = audience.current_version
    now = timezone.now()
    try:
        members = AudienceMember.objects.of_version(audience_id=audience.pk, version=version).values("profile_id")
        chosen = profiles_reachable(
            profiles=Profile.objects.filter(workspace_id=export.workspace_id, pk__in=members),
            workspace_id=export.workspace_id,
            purpose=export.purpose,
            channel=export.channel,
            at=now,
        )
        people = chosen.order_by("pk").values_list("external_id", "email", "phone", "first_name", "last_name")
        content, rows = _render(export, people.iterator(chunk_size=EXPORT_CHUNK))
        name = f"{export.segment.pk}-{export.purpose}-{export.channel}-{now:%Y%m%d%H%M%S}.{'csv' if export.format == 'csv' else 'jsonl'}"
        with transaction.atomic():
            # Only the lease holder writes: a stale run (its lease taken over) leaves no file and no rows.
            if not AudienceExport.objects.select_for_update().filter(pk=export.pk, lease_token=token).exists():
                return AudienceExport.objects.get(pk=export.pk)
            # Who was in it: the person's export destinations, and the rows an erasure takes out.
            AudienceExportMember.objects.filter(export=export).delete()  # a retried run writes it again
            insert_select(
                AudienceExportMember,
                ["workspace", "export", "profile"],
                chosen.annotate(_workspace=Value(export.workspace_id), _export=Value(export.pk))
                .order_by()
                .values_list("_workspace", "_export", "pk"),
            )
            export.file.save(name, ContentFile(content.encode("utf-8")), save=False)
            lease_release(
                model=AudienceExport,
                pk=export.pk,
                token=token,
                status=AudienceExport.Status.READY,
                file=export.file.name,
                audience_version=version,
                audience_size=audience.size,
                row_count=rows,
                finished_at=timezone.now(),
            )
    except Exception as exc:
        lease_fail(model=AudienceExport, pk=export.pk, token=token, exc=exc, finished_at=timezone.now())
    return AudienceExport.objects.get(pk=export.pk)


def export_file_response(*, export: AudienceExport, role: str | None, by) -> FileResponse:
    """The export's file as a download, for a role allowed to read its identifiers; the download is audited.

    Raises PermissionDenied for plain identifiers without `export_plain`, Http404 while there is no file.
    """
    if export.identifiers == AudienceExport.Identifiers.PLAIN and not role_can(role, Capability.EXPORT_PLAIN):
        raise PermissionDenied(gettext("Your role may not download plain identifiers."))
    if export.status != AudienceExport.Status.READY or not export.file:
        raise Http404("This export has no file (yet).")
    audit_record(
        workspace_id=export.workspace_id,
        actor=by,
        action=Action.EXPORT_DOWNLOADED,
        object_type="audience_export",
        object_id=export.pk,
        detail={"identifiers": export.identifiers, "rows": export.row_count},
    )
    name = export.file.name or f"export-{export.pk}"
    return FileResponse(
        export.file.open("rb"),
        as_attachment=True,
        filename=name.rsplit("/", 1)[-1],
        content_type="text/csv" if export.format == AudienceExport.Format.CSV else "application/x-ndjson",
    )


def _render(export: AudienceExport, people) -> tuple[str, int]:
    region = export.workspace.country
    buffer = io.StringIO()
    hashed = export.identifiers == AudienceExport.Identifiers.HASHED
    columns = (
        ["external_id", "email_sha256", "phone_sha256"]
        if hashed
        else ["external_id", "email", "phone", "first_name", "last_name"]
    )
    writer = csvfiles.writer(buffer) if export.format == AudienceExport.Format.CSV else None
    if writer:
        writer.writerow(columns)
    rows = 0
    for external_id, email, phone, first_name, last_name in people:
        email, phone = normalised_identifiers(email, phone, default_region=region)
        if hashed:
            values = [external_id, sha256_identifier(email) if email else "", sha256_identifier(phone) if phone else ""]
        else:
            values = [external_id, email, phone, first_name, last_name]
        if writer:
            writer.writerow(values)
        else:
            buffer.write(json.dumps(dict(zip(columns, values, strict=True))) + "\n")
        rows += 1
    return buffer.getvalue(), rows
