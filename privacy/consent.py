"""Consent: append a statement, withdraw in one call, import a history with its proof.

A statement that ends consent (withdrawn or denied) takes effect at once: the person's pending
deliveries on the channels it covers are cancelled, their waiting triggered sends too when no
channel of the campaign may still reach them, and a removal notice goes to every past
destination of their data on those channels.
"""

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from core.api import django_error_detail, error_details
from core.errors import CommonErrorCode
from customers.models import Profile
from privacy.audit import Action, audit_record
from privacy.errors import PrivacyErrorCode
from privacy.models import CONSENT_FIELDS, ConsentRecord, ConsentStatus, LegalBasis, RemovalNotice
from privacy.registry import consent_ending, counts_of, destinations_of


def _check_profile(profile: Profile) -> None:
    if profile.erased_at is not None:
        raise ValidationError(
            {"profile": ValidationError(gettext("This person's data was erased."), code=PrivacyErrorCode.ERASED)}
        )


@transaction.atomic
def consent_record_create(*, profile: Profile, by=None, **fields: Any) -> ConsentRecord:
    """Append a statement to the person's consent history (never edits one)."""
    _check_profile(profile)
    fields.setdefault("recorded_at", timezone.now())
    record = ConsentRecord(workspace_id=profile.workspace_id, profile=profile, created_by=by, **fields)
    record.full_clean()
    record.save()
    if record.status != ConsentStatus.GRANTED:
        consent_ended(profile=profile, channels={record.channel}, reason=RemovalNotice.Reason.WITHDRAWAL)
    return record


def grants_withdraw(
    *,
    profile: Profile,
    by=None,
    purposes: Iterable[str] | None = None,
    channels: Iterable[str] | None = None,
    recorded_at: datetime | None = None,
    **evidence: Any,
) -> list[ConsentRecord]:
    """Append a withdrawal for each grant in force of these purposes and channels (all when not
    given) and return them; nothing is appended when nothing is granted. `evidence`: source, form,
    notice_version, ip_address, user_agent, proof.
    """
    in_force = ConsentRecord.objects.filter(profile=profile).current().filter(status=ConsentStatus.GRANTED)
    if purposes:
        in_force = in_force.filter(purpose__in=list(purposes))
    if channels:
        in_force = in_force.filter(channel__in=list(channels))
    when = recorded_at or timezone.now()
    records = [
        ConsentRecord(
            workspace_id=profile.workspace_id,
            profile=profile,
            purpose=g.purpose,
            channel=g.channel,
            status=ConsentStatus.WITHDRAWN,
            legal_basis=g.legal_basis,
            recorded_at=when,
            created_by=by,
            **evidence,
        )
        for g in in_force.order_by("purpose", "channel")
    ]
    for record in records:
        record.full_clean()
    return ConsentRecord.objects.bulk_create(records)


@transaction.atomic
def consent_withdraw(
    *,
    profile: Profile,
    by=None,
    purposes: Iterable[str] | None = None,
    channels: Iterable[str] | None = None,
    source: str = "privacy-team",
    recorded_at: datetime | None = None,
    **evidence: Any,
) -> list[ConsentRecord]:
    """Withdraw every grant in force for the purposes and channels (all of them when not given)."""
    _check_profile(profile)
    Profile.objects.select_for_update().filter(pk=profile.pk).first()  # one withdrawal at a time per person
    records = grants_withdraw(
        profile=profile, by=by, purposes=purposes, channels=channels, recorded_at=recorded_at, source=source, **evidence
    )
    if not records:
        raise ValidationError(
            {
                "non_field_errors": ValidationError(
                    gettext("Nothing is granted here to withdraw."), code=PrivacyErrorCode.NOTHING_TO_WITHDRAW
                )
            }
        )
    consent_ended(profile=profile, channels={r.channel for r in records}, reason=RemovalNotice.Reason.WITHDRAWAL)
    audit_record(
        workspace_id=profile.workspace_id,
        actor=by,
        action=Action.CONSENT_WITHDRAWN,
        object_type="profile",
        object_id=profile.pk,
        profile_id=profile.pk,
        detail={"withdrawn": [f"{r.purpose}/{r.channel}" for r in records]},
    )
    return records


def consent_ended(*, profile: Profile, channels: set[str] | None, reason: str, request=None) -> dict[str, int]:
    """What ending one person's consent on channels (None: every channel) does now."""
    return consents_ended(
        workspace_id=profile.workspace_id, ended={profile.pk: channels}, reason=reason, request=request
    )


def consents_ended(
    *, workspace_id: int, ended: Mapping[int, set[str] | None], reason: str, request=None
) -> dict[str, int]:
    """What ending consent does now, for many people at once (`ended`: profile id -> the channels
    it ended on, None for every channel): cancel their pending deliveries on those channels and
    the triggered sends that no channel of their campaign may still carry, and send removal
    notices to past destinations. A few statements whatever the number of people; notices only
    for the people whose data went somewhere.
    """
    from privacy.destinations import removal_notices_create

    # Campaigns stop what can no longer go out (pending deliveries, triggered sends).
    stopped = counts_of(
        consent_ending.send(sender=ConsentRecord, workspace_id=workspace_id, ended=ended, reason=reason)
    )
    went_somewhere = destinations_of(list(ended))  # read once for everyone, not once a person
    notices = 0
    for profile in Profile.objects.filter(workspace_id=workspace_id, pk__in=list(went_somewhere)).order_by("pk"):
        notices += len(
            removal_notices_create(
                profile=profile,
                channels=ended[profile.pk],
                reason=reason,
                request=request,
                destinations=went_somewhere[profile.pk],
            )
        )
    return {
        "touches_cancelled": stopped.get("touches_cancelled", 0),
        "sends_cancelled": stopped.get("sends_cancelled", 0),
        "removal_notices": notices,
    }


# --- import ------------------------------------------------------------------------------

IMPORT_MAX_ROWS = 10_000


class ImportRejected(Exception):
    """Rows refused, by index and field, in the API's error format; nothing was written."""

    def __init__(self, errors: dict[str, Any]) -> None:
        super().__init__("Consent import rejected")
        self.errors = errors


def consents_import(*, workspace, rows: list[dict[str, Any]], by=None) -> dict[str, int]:
    """Import consent statements collected elsewhere, each with its proof; all or nothing.

    A row names the person by `external_id`. A grant under the consent basis must carry its
    evidence: a `proof` reference, or the `form` with the `ip_address` it was given from.
    A row already in the history (same person, purpose, channel, status and time) is skipped,
    so a replayed file adds nothing.
    """
    if not rows:
        raise ValidationError(
            {"records": ValidationError(gettext("Send at least one record."), code=CommonErrorCode.EMPTY)}
        )
    if len(rows) > IMPORT_MAX_ROWS:
        raise ValidationError(
            {
                "records": ValidationError(
                    gettext("At most %(import_max_rows)s records a request.") % {"import_max_rows": IMPORT_MAX_ROWS},
                    code=CommonErrorCode.MAX_LENGTH,
                )
            }
        )
    ids = {str(r.get("external_id", "")) for r in rows}
    profiles = {
        p.external_id: p
        for p in Profile.objects.filter(workspace=workspace, external_id__in=ids, erased_at__isnull=True)
    }
    errors: dict[str, Any] = {}
    records = []
    horizon = timezone.now() + timedelta(minutes=5)
    for index, row in enumerate(rows):
        profile = profiles.get(str(row.get("external_id", "")))
        if profile is None:
            errors[str(index)] = {
                "external_id": [
                    {"message": "No such profile in this workspace.", "code": PrivacyErrorCode.UNKNOWN_PROFILE}
                ]
            }
            continue
        fields = {name: row[name] for name in CONSENT_FIELDS if row.get(name) not in (None, "")}
        record = ConsentRecord(workspace_id=workspace.pk, profile=profile, created_by=by, **fields)
        try:
            record.full_clean()
            problems = {}
            if record.recorded_at and record.recorded_at > horizon:
                problems["recorded_at"] = ValidationError(
                    gettext("A consent cannot be recorded in the future."), code=CommonErrorCode.OUT_OF_RANGE
                )
            basis = record.legal_basis or LegalBasis.CONSENT
            if (
                record.status == ConsentStatus.GRANTED
                and basis == LegalBasis.CONSENT
                and not (record.proof or (record.form and record.ip_address))
            ):
                problems["proof"] = ValidationError(
                    gettext("A consent grant needs its proof: a proof reference, or the form and the IP address."),
                    code=PrivacyErrorCode.NO_PROOF,
                )
            if problems:
                raise ValidationError(problems)
        except ValidationError as exc:
            errors[str(index)] = error_details(django_error_detail(exc))
            continue
        records.append(record)
    if errors:
        raise ImportRejected({"records": errors})
    existing = set(
        ConsentRecord.objects.filter(workspace=workspace, profile__in=[r.profile for r in records]).values_list(
            "profile_id", "purpose", "channel", "status", "recorded_at"
        )
    )
    new, seen = [], set()
    for r in records:
        key = (r.profile_id, r.purpose, r.channel, r.status, r.recorded_at)
        if key not in existing and key not in seen:
            seen.add(key)
            new.append(r)
    with transaction.atomic():
        ConsentRecord.objects.bulk_create(new)
        ended: dict[int, set[str]] = {}
        for r in new:
            if r.status != ConsentStatus.GRANTED:
                ended.setdefault(r.profile_id, set()).add(r.channel)
        if ended:
            consents_ended(workspace_id=workspace.pk, ended=ended, reason=RemovalNotice.Reason.WITHDRAWAL)
        audit_record(
            workspace_id=workspace.pk,
            actor=by,
            action=Action.CONSENT_IMPORTED,
            object_type="consent_import",
            detail={"received": len(rows), "created": len(new), "duplicates": len(records) - len(new)},
        )
    return {"received": len(rows), "created": len(new), "duplicates": len(records) - len(new)}
