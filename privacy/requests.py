"""Data-subject requests: received, due one month later (extendable once, with a reason, by two
more months: GDPR Art. 12(3)), then carried out by kind and completed, or rejected.

Every step is audited. Carrying a request out is one service per kind:
- access and portability: a JSON document of everything Cible holds on the person;
- rectification: the corrections applied through the profile service;
- erasure: `privacy.erasure.profiles_erase`, the request kept as a tombstone;
- objection: the person's identifiers on the suppression list, marketing consent withdrawn,
  pending deliveries and triggered sends cancelled, removal notices to past destinations.
"""

import calendar
import json
import zoneinfo
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from core.errors import CommonErrorCode
from customers.models import Profile
from privacy.audit import Action, audit_record
from privacy.errors import PrivacyErrorCode
from privacy.models import (
    CONSENT_FIELDS,
    MARKETING_PURPOSES,
    ConsentRecord,
    DataSubjectRequest,
    RemovalNotice,
    Suppression,
)
from privacy.registry import access_sections
from privacy.selectors import profiles_unsuppressed
from privacy.suppression import hashed_identifier, identifier_hashes, suppression_add

Kind = DataSubjectRequest.Kind
Status = DataSubjectRequest.Status
RESPONSE_MONTHS = 1  # GDPR Art. 12(3): without undue delay and within one month of receipt
EXTENSION_MONTHS = 2  # "...extended by two further months where necessary"
NEEDS_PROFILE = {Kind.ACCESS, Kind.PORTABILITY, Kind.RECTIFICATION, Kind.ERASURE}


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the month's last day when it has no such day (31 Jan -> 28 Feb)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_on(*, received_at: datetime, time_zone: str) -> date:
    """The last day to answer: one month after the day of receipt, in the workspace's time zone."""
    return add_months(received_at.astimezone(zoneinfo.ZoneInfo(time_zone)).date(), RESPONSE_MONTHS)


def _locked(request: DataSubjectRequest) -> DataSubjectRequest:
    return (
        DataSubjectRequest.objects.select_for_update(of=("self",))
        .select_related("workspace", "profile")
        .get(pk=request.pk)
    )


def _subject(request: DataSubjectRequest) -> Profile:
    """The person an access, rectification or erasure is about: named when the request was received,
    but the link is cleared if that profile is deleted afterwards."""
    if request.profile is None:
        raise ValidationError(
            {
                "profile": ValidationError(
                    gettext("The request's profile no longer exists."), code=PrivacyErrorCode.PROFILE_REQUIRED
                )
            }
        )
    return request.profile


def _not_open(request: DataSubjectRequest) -> ValidationError:
    return ValidationError(
        {
            "status": ValidationError(
                gettext("The request is %(value)s.") % {"value": request.get_status_display().lower()},
                code=PrivacyErrorCode.NOT_OPEN,
            )
        }
    )


def _audit(request: DataSubjectRequest, by, action: str, **detail: Any) -> None:
    audit_record(
        workspace_id=request.workspace_id,
        actor=by,
        action=action,
        object_type="data_subject_request",
        object_id=request.pk,
        profile_id=request.profile_id,
        detail={"kind": request.kind, **detail},
    )


def _subject_hashes(subject: str, workspace) -> list[str]:
    if not subject:
        return []
    hashed = hashed_identifier(subject, default_region=workspace.country)
    return [f"{hashed[0]}:{hashed[1]}"] if hashed else []


@transaction.atomic
def request_create(
    *,
    workspace,
    kind: str,
    profile: Profile | None = None,
    subject: str = "",
    received_at: datetime | None = None,
    changes: dict | None = None,
    notes: str = "",
    by=None,
) -> DataSubjectRequest:
    received_at = received_at or timezone.now()
    errors = {}
    if kind not in Kind.values:
        errors["kind"] = ValidationError(
            gettext("Expected one of %(values)s.") % {"values": Kind.values}, code=CommonErrorCode.INVALID_CHOICE
        )
    if profile is not None and profile.workspace_id != workspace.pk:
        errors["profile"] = ValidationError(
            gettext("No such profile in this workspace."), code=PrivacyErrorCode.UNKNOWN_PROFILE
        )
    elif profile is None and (kind in NEEDS_PROFILE or not subject):
        errors["profile"] = ValidationError(
            gettext("Name the person's profile (an objection may name only an e-mail or phone)."),
            code=PrivacyErrorCode.PROFILE_REQUIRED,
        )
    elif profile is not None and profile.erased_at is not None and kind != Kind.ERASURE:
        errors["profile"] = ValidationError(gettext("This person's data was erased."), code=PrivacyErrorCode.ERASED)
    if subject and kind == Kind.OBJECTION and not _subject_hashes(subject, workspace):
        errors["subject"] = ValidationError(
            gettext("Expected an e-mail address or a phone number."), code=PrivacyErrorCode.INVALID_IDENTIFIER
        )
    if received_at > timezone.now() + timedelta(minutes=5):
        errors["received_at"] = ValidationError(
            gettext("A request cannot be received in the future."), code=CommonErrorCode.OUT_OF_RANGE
        )
    if changes and kind != Kind.RECTIFICATION:
        errors["changes"] = ValidationError(
            gettext("Only a rectification carries changes."), code=PrivacyErrorCode.WRONG_KIND
        )
    if errors:
        raise ValidationError(errors)
    due = due_on(received_at=received_at, time_zone=workspace.time_zone)
    request = DataSubjectRequest(
        workspace=workspace,
        kind=kind,
        profile=profile,
        subject=subject,
        subject_hashes=_subject_hashes(subject, workspace),
        received_at=received_at,
        due_on=due,
        original_due_on=due,
        changes=changes or {},
        notes=notes,
        created_by=by,
    )
    request.full_clean()
    request.save()
    _audit(request, by, Action.REQUEST_CREATED, due_on=due.isoformat())
    return request


@transaction.atomic
def request_update(*, request: DataSubjectRequest, by, **fields: Any) -> DataSubjectRequest:
    """Change the notes, or a rectification's changes, while the request is open."""
    request = _locked(request)
    if not request.open:
        raise _not_open(request)
    if "changes" in fields and request.kind != Kind.RECTIFICATION:
        raise ValidationError(
            {
                "changes": ValidationError(
                    gettext("Only a rectification carries changes."), code=PrivacyErrorCode.WRONG_KIND
                )
            }
        )
    for name, value in fields.items():
        setattr(request, name, value)
    request.save()
    _audit(request, by, Action.REQUEST_UPDATED, fields=sorted(fields))
    return request


@transaction.atomic
def request_start(*, request: DataSubjectRequest, by) -> DataSubjectRequest:
    request = _locked(request)
    if request.status == Status.IN_PROGRESS:
        return request
    if request.status != Status.RECEIVED:
        raise _not_open(request)
    request.status = Status.IN_PROGRESS
    request.handled_by = by
    request.save(update_fields=["status", "handled_by", "updated_at"])
    _audit(request, by, Action.REQUEST_STARTED)
    return request


@transaction.atomic
def request_extend(*, request: DataSubjectRequest, reason: str, by) -> DataSubjectRequest:
    """Push the due date two months further, once, for a stated reason (told to the person)."""
    request = _locked(request)
    if not request.open:
        raise _not_open(request)
    if not reason.strip():
        raise ValidationError(
            {
                "reason": ValidationError(
                    gettext("Say why the request needs more time."), code=PrivacyErrorCode.REASON_REQUIRED
                )
            }
        )
    if request.extended_at is not None:
        raise ValidationError(
            {
                "reason": ValidationError(
                    gettext("The request was already extended once."), code=PrivacyErrorCode.ALREADY_EXTENDED
                )
            }
        )
    old = request.due_on
    request.due_on = add_months(request.original_due_on, EXTENSION_MONTHS)
    request.extension_reason = reason.strip()
    request.extended_at = timezone.now()
    request.save(update_fields=["due_on", "extension_reason", "extended_at", "updated_at"])
    _audit(request, by, Action.REQUEST_EXTENDED, old=old.isoformat(), new=request.due_on.isoformat())
    return request


@transaction.atomic
def request_reject(*, request: DataSubjectRequest, reason: str, by) -> DataSubjectRequest:
    request = _locked(request)
    if not request.open:
        raise _not_open(request)
    if not reason.strip():
        raise ValidationError(
            {
                "reason": ValidationError(
                    gettext("Say why the request is refused."), code=PrivacyErrorCode.REASON_REQUIRED
                )
            }
        )
    request.status = Status.REJECTED
    request.resolution = reason.strip()
    request.handled_by = by
    request.completed_at = timezone.now()
    request.save(update_fields=["status", "resolution", "handled_by", "completed_at", "updated_at"])
    _audit(request, by, Action.REQUEST_REJECTED)
    return request


def request_complete(*, request: DataSubjectRequest, by) -> DataSubjectRequest:
    """Carry the request out, by its kind, and complete it; a completed request is left as it is."""
    with transaction.atomic():
        request = _locked(request)
        if request.status == Status.COMPLETED:
            return request
        if not request.open:
            raise _not_open(request)
        outcome, resolution = _CARRY_OUT[request.kind](request, by)
        request.refresh_from_db()
        request.status = Status.COMPLETED
        request.outcome = outcome
        request.resolution = resolution
        request.handled_by = by
        request.completed_at = timezone.now()
        request.save(update_fields=["status", "outcome", "resolution", "handled_by", "completed_at", "updated_at"])
        _audit(request, by, Action.REQUEST_COMPLETED, outcome=outcome)
    return request


# --- carrying out, by kind -------------------------------------------------------------------


def _access(request: DataSubjectRequest, by) -> tuple[dict, str]:
    document = access_document(profile=_subject(request))
    document["request"] = {"id": request.pk, "kind": request.kind, "received_at": request.received_at}
    content = json.dumps(document, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
    name = f"{request.kind}-{request.pk}-{timezone.now():%Y%m%d%H%M%S}.json"
    request.export_file.save(name, ContentFile(content.encode("utf-8")), save=False)
    DataSubjectRequest.objects.filter(pk=request.pk).update(export_file=request.export_file.name)
    counts = {key: len(value) for key, value in document.items() if isinstance(value, list)}
    return counts, "The person's data was exported as JSON."


def _rectification(request: DataSubjectRequest, by) -> tuple[dict, str]:
    from customers.services import profile_rectify

    if not request.changes:
        raise ValidationError(
            {"changes": ValidationError(gettext("Give the fields to correct."), code=PrivacyErrorCode.NO_CHANGES)}
        )
    try:
        fields = profile_rectify(profile=_subject(request), changes=request.changes)
    except ValidationError as exc:  # each refusal on its field of the changes
        raise ValidationError({f"changes.{name}": errors for name, errors in exc.error_dict.items()}) from exc
    return {"fields": fields}, f"Corrected: {', '.join(fields)}."


def _erasure(request: DataSubjectRequest, by) -> tuple[dict, str]:
    from privacy.destinations import removal_notices_create
    from privacy.erasure import profiles_erase

    profile = _subject(request)
    if profile.erased_at is not None:
        return {}, "Already erased."
    hashes = identifier_hashes([profile.pk])[profile.pk]
    notices = removal_notices_create(
        profile=profile, channels=None, reason=RemovalNotice.Reason.ERASURE, request=request
    )
    # The tombstone keeps the person's identifiers as hashes only.
    DataSubjectRequest.objects.filter(pk=request.pk).update(
        subject_hashes=sorted(set(request.subject_hashes) | {f"{k}:{h}" for k, h in hashes})
    )
    outcome = profiles_erase(workspace_id=request.workspace_id, profile_ids=[profile.pk])
    outcome["removal_notices"] = len(notices)
    return outcome, "The person's data was erased; totals were kept without identity."


def _objection(request: DataSubjectRequest, by) -> tuple[dict, str]:
    from privacy.consent import consent_ended, grants_withdraw

    hashes: set[tuple[str, str]] = {tuple(h.split(":", 1)) for h in request.subject_hashes}
    outcome: dict[str, int] = {}
    profile = request.profile
    if profile is not None and profile.erased_at is None:
        hashes |= identifier_hashes([profile.pk])[profile.pk]
        withdrawn = grants_withdraw(
            profile=profile,
            by=by,
            purposes=MARKETING_PURPOSES,
            source="objection",
            proof=f"data-subject request {request.pk}",
        )
        outcome["consents_withdrawn"] = len(withdrawn)
        outcome.update(
            consent_ended(profile=profile, channels=None, reason=RemovalNotice.Reason.OBJECTION, request=request)
        )
    outcome["suppressed"] = suppression_add(
        workspace_id=request.workspace_id, hashes=hashes, reason=Suppression.Reason.OBJECTION, request=request, by=by
    )
    DataSubjectRequest.objects.filter(pk=request.pk).update(
        subject_hashes=sorted({f"{k}:{h}" for k, h in hashes}), subject=""
    )
    audit_record(
        workspace_id=request.workspace_id,
        actor=by,
        action=Action.SUPPRESSION_ADDED,
        object_type="data_subject_request",
        object_id=request.pk,
        profile_id=request.profile_id,
        detail={"identifiers": len(hashes)},
    )
    return outcome, "The person will never again be contacted for marketing: identifiers on the suppression list."


_CARRY_OUT: dict[str, Callable[[DataSubjectRequest, Any], tuple[dict, str]]] = {
    Kind.ACCESS: _access,
    Kind.PORTABILITY: _access,
    Kind.RECTIFICATION: _rectification,
    Kind.ERASURE: _erasure,
    Kind.OBJECTION: _objection,
}


def access_document(*, profile: Profile) -> dict[str, Any]:
    """Everything Cible holds on the person, as JSON-ready data (GDPR Art. 15 and 20)."""
    from privacy.destinations import export_destinations

    profile_fields = [f.name for f in Profile._meta.concrete_fields if f.name not in ("workspace",)]
    document = {
        "generated_at": timezone.now(),
        "workspace": profile.workspace.name,
        "profile": {name: getattr(profile, name) for name in profile_fields},
        "identities": list(profile.identities.values("type", "value", "created_at")),
        "merged_profiles": list(profile.merges.values("merged_external_id", "merged_at")),
        "events": list(profile.events.order_by("occurred_at").values("type", "channel", "occurred_at", "properties")),
        "orders": list(
            profile.orders.order_by("ordered_at").values(
                "order_id", "amount", "currency", "ordered_at", "channel", "status", "items"
            )
        ),
        "survey_responses": list(profile.survey_responses.values("survey", "question", "answer", "answered_at")),
        "consents": list(
            ConsentRecord.objects.filter(profile=profile).order_by("recorded_at", "id").values(*CONSENT_FIELDS)
        ),
        "exports": export_destinations(profile=profile),
        "suppressed": not profiles_unsuppressed(
            profiles=Profile.objects.filter(pk=profile.pk), workspace_id=profile.workspace_id
        ).exists(),
    }
    # Segments, memberships, deliveries, clicks...: each app adds what it holds on the person.
    for section in access_sections:
        document.update(section(profile))
    return document
