"""What the API and the admin ask of insights: create models and lookalikes, queue their jobs,
pick a model's threshold, rename a persona, edit the named RFM segments."""

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext

from accounts.models import Workspace
from core.errors import CommonErrorCode, Conflict
from insights.errors import InsightErrorCode
from insights.jobs import job_request
from insights.lookalikes import band_segments_ensure, seed_model
from insights.models import InsightJob, Lookalike, Persona, PersonaRun, PredictiveModel, RfmSegment
from insights.personas import persona_rename
from insights.rfm import reachability, rfm_segments, rfm_segments_apply
from segments.membership import current_audience
from segments.models import Segment
from segments.services import segment_create


def _segment_of(workspace: Workspace, segment: Segment) -> Segment:
    if segment.workspace_id != workspace.pk:  # serializers scope the choices; services check again
        raise ValidationError(
            {"segment": ValidationError(gettext("No such segment."), code=CommonErrorCode.DOES_NOT_EXIST)}
        )
    return segment


def model_check(*, workspace: Workspace, kind: str, segment: Segment | None, horizon_days: int | None) -> None:
    """Refuse a model that cannot be trained: its subject missing, its segment never computed, or a
    second membership model of one segment."""
    errors: dict[str, ValidationError] = {}
    if kind == PredictiveModel.Kind.MEMBERSHIP:
        if segment is None:
            errors["segment"] = ValidationError(
                gettext("A membership model needs its segment."), code=CommonErrorCode.REQUIRED
            )
    else:
        if horizon_days is None:
            errors["horizon_days"] = ValidationError(
                gettext("A purchase or churn model needs its horizon in days."), code=CommonErrorCode.REQUIRED
            )
        if segment is not None:
            errors["segment"] = ValidationError(
                gettext("Only a membership model has a segment."), code=CommonErrorCode.INVALID
            )
    if errors:
        raise ValidationError(errors)
    if segment is not None:
        _segment_of(workspace, segment)
        if PredictiveModel.objects.filter(workspace=workspace, kind=kind, segment=segment).exists():
            raise Conflict(
                {
                    "segment": ValidationError(
                        gettext("This segment has a membership model already."), code=CommonErrorCode.UNIQUE
                    )
                }
            )
        _computed(segment, "segment")


def _computed(segment: Segment, field: str) -> None:
    if current_audience(segment=segment) is None:
        raise ValidationError(
            {
                field: ValidationError(
                    gettext("Compute the audience of %(value)s first.") % {"value": repr(segment.name)},
                    code=InsightErrorCode.NO_AUDIENCE,
                )
            }
        )


def model_create(*, workspace: Workspace, by=None, **fields: Any) -> tuple[PredictiveModel, InsightJob]:
    """A membership (of `segment`), purchase or churn (within `horizon_days`) model, and its training job."""
    kind = fields["kind"]
    if kind == PredictiveModel.Kind.MEMBERSHIP:
        fields.pop("horizon_days", None)
    segment = fields.get("segment")
    model_check(workspace=workspace, kind=kind, segment=segment, horizon_days=fields.get("horizon_days"))
    if not fields.get("name"):
        fields["name"] = (
            f"Membership of {segment.name}"
            if segment is not None
            else f"{kind.capitalize()} in {fields['horizon_days']} days"
        )[:120]
    with transaction.atomic():
        model = PredictiveModel.objects.create(workspace=workspace, created_by=by, **fields)
        job = model_train_request(model=model, by=by)
    return model, job


def model_train_request(*, model: PredictiveModel, by=None) -> InsightJob:
    if model.segment is not None:
        _computed(model.segment, "segment")
    return job_request(workspace=model.workspace, kind=InsightJob.Kind.MODEL, subject_id=model.pk, by=by)


def model_threshold_pick(*, model: PredictiveModel, reach: int | None = None, precision: float | None = None):
    """The threshold that reaches at most `reach` profiles, or the lowest whose held-out precision is at
    least `precision` (reach as large as that precision allows); saved on the model and returned with
    its row of the curve."""
    if not model.curve:
        raise ValidationError(
            {"non_field_errors": ValidationError(gettext("Train the model first."), code=InsightErrorCode.NOT_TRAINED)}
        )
    rows = sorted(model.curve, key=lambda row: row["threshold"])
    if reach is not None:
        fitting = [row for row in rows if row["reach"] <= reach]
        chosen = fitting[0] if fitting else None
        field, wanted = "reach", f"at most {reach} profiles"
    else:
        assert precision is not None
        fitting = [row for row in rows if row["precision"] is not None and row["precision"] >= precision]
        chosen = fitting[0] if fitting else None
        field, wanted = "precision", f"a precision of {precision:g}"
    if chosen is None:
        raise ValidationError(
            {
                field: ValidationError(
                    gettext("No threshold of the curve gives %(wanted)s.") % {"wanted": wanted},
                    code=CommonErrorCode.OUT_OF_RANGE,
                )
            }
        )
    model.threshold = Decimal(str(chosen["threshold"]))
    model.save(update_fields=["threshold"])
    return chosen


def lookalike_create(
    *,
    workspace: Workspace,
    seed: Segment,
    purpose: str = Lookalike._meta.get_field("purpose").default,
    channel: str = Lookalike._meta.get_field("channel").default,
    by=None,
):
    lookalike_check(workspace=workspace, seed=seed, purpose=purpose, channel=channel)
    try:
        with transaction.atomic():
            lookalike = Lookalike.objects.create(workspace=workspace, seed=seed, purpose=purpose, channel=channel)
            seed_model(lookalike=lookalike)
            band_segments_ensure(lookalike=lookalike, owner=by)
    except IntegrityError:
        raise Conflict(
            {"seed": ValidationError(gettext("These lookalikes exist already."), code=CommonErrorCode.UNIQUE)}
        ) from None
    job = lookalike_refresh_request(lookalike=lookalike, by=by)
    return lookalike, job


def lookalike_check(*, workspace: Workspace, seed: Segment, purpose: str, channel: str) -> None:
    _segment_of(workspace, seed)
    if Lookalike.objects.filter(workspace=workspace, seed=seed, purpose=purpose, channel=channel).exists():
        raise Conflict(
            {"seed": ValidationError(gettext("These lookalikes exist already."), code=CommonErrorCode.UNIQUE)}
        )
    _computed(seed, "seed")


def lookalike_refresh_request(*, lookalike: Lookalike, by=None) -> InsightJob:
    return job_request(workspace=lookalike.workspace, kind=InsightJob.Kind.LOOKALIKE, subject_id=lookalike.pk, by=by)


def persona_name_set(*, persona: Persona, name: str) -> Persona:
    taken = Persona.objects.filter(workspace_id=persona.workspace_id, name=name).exclude(pk=persona.pk).exists()
    if taken:
        raise Conflict(
            {"name": ValidationError(gettext("Another persona has this name."), code=CommonErrorCode.UNIQUE)}
        )
    return persona_rename(persona=persona, name=name)


def rfm_segment_update(*, segment: RfmSegment, **fields: Any) -> RfmSegment:
    """Edit a named segment's name, ranges or position; refused when it would leave a named
    segment unreachable (every segment must win at least one (R, F, M) cell), then applied to the
    current run at once."""
    with transaction.atomic():
        for name, value in fields.items():
            setattr(segment, name, value)
        segment.full_clean()
        segment.save()
        segments = list(RfmSegment.objects.select_for_update().filter(workspace_id=segment.workspace_id))
        dead = sorted(code for code, cells in reachability(segments).items() if code and cells == 0)
        if dead:
            raise ValidationError(
                {
                    "non_field_errors": ValidationError(
                        gettext(
                            "Segments earlier in the order would leave %(value)s unreachable: narrow them, or move this one before them."
                        )
                        % {"value": ", ".join(dead)},
                        code=InsightErrorCode.UNREACHABLE,
                    )
                }
            )
    rfm_segments_apply(workspace=segment.workspace)
    return segment


def rfm_request(*, workspace: Workspace, as_of=None, by=None) -> InsightJob:
    rfm_segments(workspace=workspace)
    return job_request(
        workspace=workspace, kind=InsightJob.Kind.RFM, params={"as_of": as_of.isoformat()} if as_of else {}, by=by
    )


def clv_request(*, workspace: Workspace, as_of=None, by=None, **settings: Any) -> InsightJob:
    """Queue a CLV run: `settings` are ClvRun's unit, horizon_months, discount_rate, purchase_days
    and holdout_days."""
    params = {**settings, **({"as_of": as_of.isoformat()} if as_of else {})}
    return job_request(workspace=workspace, kind=InsightJob.Kind.CLV, params=params, by=by)


# The ready-made segment of the customers who matter and may be leaving: the top three tenths of
# lifetime value whose probability of still being a customer is below a half, or fell by 0.1 or
# more since the previous run.
AT_RISK_NAME = "High value at risk"
AT_RISK_DEFINITION = {
    "all": [
        {"clv": {"decile": {"gte": 8}}},
        {"any": [{"clv": {"p_alive": {"lt": 0.5}}}, {"clv": {"p_alive_change": {"lte": -0.1}}}]},
    ]
}


def clv_at_risk_segment(*, workspace: Workspace, owner=None) -> tuple[Segment, bool]:
    """The "high value at risk" segment, created the first time (True) or found again (False):
    it reads the current CLV run, so it follows every refresh."""
    existing = Segment.objects.filter(workspace=workspace, definition=AT_RISK_DEFINITION).first()
    if existing is not None:
        return existing, False
    name = AT_RISK_NAME
    if Segment.objects.filter(workspace=workspace, name=name).exists():
        name = f"{AT_RISK_NAME} (CLV)"
    segment = segment_create(
        workspace=workspace,
        name=name,
        description="The top three tenths of lifetime value whose probability of still being a customer is "
        "below 0.5 or fell by 0.1 or more since the previous run: worth a win-back before they are gone.",
        kind=Segment.Kind.DYNAMIC,
        definition=AT_RISK_DEFINITION,
        owner=owner,
    )
    return segment, True


def personas_request(
    *, workspace: Workspace, facets: str = PersonaRun.Facets.ALL, k: int | None = None, by=None
) -> InsightJob:
    return job_request(workspace=workspace, kind=InsightJob.Kind.PERSONAS, params={"facets": facets, "k": k}, by=by)


def features_request(*, workspace: Workspace, full: bool = False, by=None) -> InsightJob:
    return job_request(workspace=workspace, kind=InsightJob.Kind.FEATURES, params={"full": full} if full else {}, by=by)
