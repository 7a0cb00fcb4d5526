import hashlib
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Now
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Workspace
from core.errors import CommonErrorCode, Conflict
from core.leases import lease_fail, lease_heartbeat, lease_release, lease_take
from customers.csv_import import CsvFormatError, csv_import, csv_text
from customers.errors import CustomerErrorCode
from customers.ingestion import attributes_validate
from customers.match_rules import known_types
from customers.merging import MergePlan, profiles_merge
from customers.merging import profile_unmerge as merging_unmerge
from customers.models import (
    PROFILE_CONTACT_FIELDS,
    PROFILE_FACET_FIELDS,
    AttributeDefinition,
    Identity,
    ImportJob,
    MatchRule,
    Profile,
    ProfileMerge,
    SurveyQuestion,
    SurveyResponse,
)
from customers.normalise import normalise_email, normalise_identity, normalise_phone


def _validated_save(instance, **kwargs: Any):
    instance.full_clean(**kwargs)
    instance.save()
    return instance


# --- profiles -------------------------------------------------------------------


def _normalise_contact(profile: Profile) -> None:
    """E-mail lower-cased, phone in E.164: the forms identities and exports match on."""
    errors = {}
    if profile.email:
        try:
            profile.email = normalise_email(profile.email)
        except ValidationError as exc:
            errors["email"] = exc
    if profile.phone:
        try:
            profile.phone = normalise_phone(profile.phone, default_region=profile.workspace.country)
        except ValidationError as exc:
            errors["phone"] = exc
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def profile_create(*, workspace: Workspace, **fields: Any) -> Profile:
    profile = Profile(workspace=workspace, **fields)
    _normalise_contact(profile)
    _validated_save(profile)
    _identities_from_contact(profile)
    return profile


@transaction.atomic
def profile_update(*, profile: Profile, **fields: Any) -> Profile:
    profile = Profile.objects.select_for_update().get(pk=profile.pk)
    for name, value in fields.items():
        setattr(profile, name, value)
    _normalise_contact(profile)
    _validated_save(profile)
    _identities_from_contact(profile)
    return profile


# What a rectification (GDPR Art. 16) may correct: what describes the person, not the sending system's id.
RECTIFIABLE_FIELDS = ("lifecycle_stage", *PROFILE_CONTACT_FIELDS, *PROFILE_FACET_FIELDS, "attributes")


@transaction.atomic
def profile_rectify(*, profile: Profile, changes: Mapping[str, Any]) -> list[str]:
    """Correct a person's profile from plain values, under the rules of every profile write; each
    refusal names its field. Returns the fields corrected."""
    unknown = sorted(set(changes) - set(RECTIFIABLE_FIELDS))
    if unknown:
        raise ValidationError(
            {
                name: ValidationError(
                    gettext("Not a field a rectification corrects; use %(value)s.")
                    % {"value": ", ".join(RECTIFIABLE_FIELDS)},
                    code=CommonErrorCode.UNKNOWN_FIELD,
                )
                for name in unknown
            }
        )
    fields = {name: value.strip() if isinstance(value, str) else value for name, value in changes.items()}
    if "attributes" in fields:
        try:
            fields["attributes"] = attributes_validate(workspace=profile.workspace, value=fields["attributes"])
        except ValidationError as exc:
            raise ValidationError({"attributes": exc.messages}) from exc
    profile_update(profile=profile, **fields)
    return sorted(fields)


def _identities_from_contact(profile: Profile) -> None:
    rows = [
        Identity(workspace_id=profile.workspace_id, profile=profile, type=kind, value=value)
        for kind, value in (("email", profile.email), ("phone", profile.phone))
        if value
    ]
    Identity.objects.bulk_create(rows, ignore_conflicts=True)
    if rows and profile.anonymous:
        Profile.objects.filter(pk=profile.pk).update(anonymous=False)


@transaction.atomic
def profile_delete(*, profile: Profile) -> None:
    profile.delete()


def profile_merge(*, survivor: Profile, merged: Profile, by=None) -> Profile:
    """Merge `merged` into `survivor`: its events, orders, identities and survey
    answers follow the survivor, and every other app moves its own rows through the
    `profile_merging` signal (consents, memberships, deliveries, clicks...); empty fields of the survivor are
    filled from it, and its external id keeps resolving to the survivor. Every row moved is
    journalled, so `profile_unmerge` can split the merge back.
    """
    if survivor.workspace_id != merged.workspace_id:
        raise ValidationError(
            {
                "other": ValidationError(
                    gettext("Profiles belong to different workspaces."), code=CommonErrorCode.INVALID
                )
            }
        )
    if survivor.pk == merged.pk:
        raise ValidationError(
            {
                "other": ValidationError(
                    gettext("A profile cannot be merged into itself."), code=CustomerErrorCode.SAME_PROFILE
                )
            }
        )
    profiles_merge(workspace_id=survivor.workspace_id, plans=[MergePlan(survivor.pk, merged.pk)], by=by)
    return Profile.objects.get(pk=survivor.pk)


def profile_unmerge(*, merge: ProfileMerge, by=None) -> Profile:
    """Split a merge back (customers.merging.profile_unmerge); returns the profile restored."""
    return merging_unmerge(merge=merge, by=by)


# --- identities, attributes, surveys -----------------------------------------------


@transaction.atomic
def identity_create(*, profile: Profile, type: str, value: str) -> Identity:
    try:
        normalised = normalise_identity(type, value, default_region=profile.workspace.country)
    except ValidationError as exc:
        raise ValidationError({"value": exc}) from None
    if Identity.objects.filter(workspace_id=profile.workspace_id, type=type, value=normalised).exists():
        raise Conflict(
            {
                "value": ValidationError(
                    gettext("This identifier already belongs to a profile."), code=CommonErrorCode.UNIQUE
                )
            }
        )
    identity = _validated_save(
        Identity(workspace_id=profile.workspace_id, profile=profile, type=type, value=normalised)
    )
    if profile.anonymous and type in known_types(profile.workspace_id):
        Profile.objects.filter(pk=profile.pk).update(anonymous=False)
    return identity


@transaction.atomic
def identity_delete(*, identity: Identity) -> None:
    identity.delete()


@transaction.atomic
def match_rule_save(*, workspace: Workspace, rule: MatchRule | None = None, **fields: Any) -> MatchRule:
    """Set how an identifier type stitches; one rule per type."""
    if rule is None:
        if MatchRule.objects.filter(workspace=workspace, type=fields.get("type")).exists():
            raise Conflict(
                {
                    "type": ValidationError(
                        gettext("This identifier type has a rule already: change it."), code=CommonErrorCode.UNIQUE
                    )
                }
            )
        rule = MatchRule(workspace=workspace)
    elif "type" in fields and fields["type"] != rule.type:
        raise ValidationError(
            {
                "type": ValidationError(
                    gettext("A rule's identifier type cannot change: delete it and add another."),
                    code=CustomerErrorCode.IMMUTABLE,
                )
            }
        )
    for name, value in fields.items():
        setattr(rule, name, value)
    return _validated_save(rule)


@transaction.atomic
def match_rule_delete(*, rule: MatchRule) -> None:
    rule.delete()


@transaction.atomic
def attribute_definition_create(*, workspace: Workspace, **fields: Any) -> AttributeDefinition:
    if AttributeDefinition.objects.filter(workspace=workspace, key=fields.get("key")).exists():
        raise Conflict(
            {"key": ValidationError(gettext("An attribute with this key exists."), code=CommonErrorCode.UNIQUE)}
        )
    return _validated_save(AttributeDefinition(workspace=workspace, **fields))


@transaction.atomic
def attribute_definition_update(*, definition: AttributeDefinition, **fields: Any) -> AttributeDefinition:
    if "type" in fields and fields["type"] != definition.type:
        raise ValidationError(
            {
                "type": ValidationError(
                    gettext("The type of an attribute cannot change once defined."), code=CustomerErrorCode.IMMUTABLE
                )
            }
        )
    for name, value in fields.items():
        setattr(definition, name, value)
    return _validated_save(definition)


@transaction.atomic
def survey_question_create(*, workspace: Workspace, **fields: Any) -> SurveyQuestion:
    return _validated_save(SurveyQuestion(workspace=workspace, **fields))


@transaction.atomic
def survey_question_update(*, question: SurveyQuestion, **fields: Any) -> SurveyQuestion:
    for name, value in fields.items():
        setattr(question, name, value)
    return _validated_save(question)


@transaction.atomic
def survey_question_delete(*, question: SurveyQuestion) -> None:
    question.delete()


@transaction.atomic
def survey_response_create(*, profile: Profile, **fields: Any) -> SurveyResponse:
    return _validated_save(SurveyResponse(workspace_id=profile.workspace_id, profile=profile, **fields))


# --- CSV imports ---------------------------------------------------------------------


def import_job_create(*, workspace: Workspace, kind: str, filename: str, content: bytes, by=None) -> ImportJob:
    """Keep the file and queue its import; the row-level report fills in as it runs."""
    if kind not in ImportJob.Kind.values:
        raise ValidationError(
            {
                "kind": ValidationError(
                    gettext("Expected one of %(value)s.") % {"value": ImportJob.Kind.values},
                    code=CommonErrorCode.INVALID_CHOICE,
                )
            }
        )
    try:
        text = csv_text(content)
    except ValidationError as exc:
        raise ValidationError({"file": exc}) from None
    from customers.tasks import import_job_run_task

    with transaction.atomic():
        job = ImportJob.objects.create(
            workspace=workspace,
            kind=kind,
            filename=filename[:255],
            content=text,
            content_sha256=hashlib.sha256(content).hexdigest(),
            created_by=by,
        )
        import_job_run_task.delay_on_commit(job_id=job.pk)
    return job


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Run a pending import under the job's lease (renewed while it runs). A job running under a
    live lease elsewhere is left alone; a killed worker's job is queued again by the recovery."""
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None or job.status not in (ImportJob.Status.PENDING, ImportJob.Status.RUNNING):
        return job
    token = lease_take(
        queryset=ImportJob.objects.filter(pk=job.pk, status__in=[ImportJob.Status.PENDING, ImportJob.Status.RUNNING]),
        status=ImportJob.Status.RUNNING,
        started_at=Coalesce(F("started_at"), Now()),
    )
    if token is None:
        return job
    # Each chunk commits on its own and rows are keyed by file and line, so a
    # re-run job (worker lost mid-file) resumes without double counting.
    with lease_heartbeat(model=ImportJob, pk=job.pk, token=token):
        try:
            result = csv_import(
                workspace=job.workspace, kind=job.kind, text=job.content, content_sha256=job.content_sha256
            )
        except Exception as exc:  # never left running for ever: the marketer sees why it stopped
            lease_fail(
                model=ImportJob, pk=job.pk, token=token, exc=exc, expected=(CsvFormatError,), finished_at=timezone.now()
            )
        else:
            lease_release(
                model=ImportJob,
                pk=job.pk,
                token=token,
                status=ImportJob.Status.SUCCEEDED,
                rows=result.rows,
                created=result.created,
                updated=result.updated,
                duplicates=result.duplicates,
                rejected=result.rejected,
                errors=result.errors,
                finished_at=timezone.now(),
            )
    job.refresh_from_db()
    return job
