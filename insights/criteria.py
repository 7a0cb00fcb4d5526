"""The rule-language criteria insights adds (registered in segments.criteria by InsightsConfig.ready):

    {"rfm": {"segment": "champions"}}                 the named RFM segment of the current run
    {"rfm": {"segment": ["champions", "loyal"]}}
    {"rfm": {"r": {"gte": 4}, "f": {"gte": 3}}}       scores 1-5
    {"probability": {"segment": 17, "gte": 0.7}}      the segment's membership model
    {"probability": {"model": 4, "gte": 0.5}}         any model (purchase propensity, churn risk)
    {"persona": 12}                                   a persona of the latest clustering
    {"lookalike": {"id": 3, "band": 5}}               the 5 % most similar to the seed (bands 1 to 5)
    {"clv": {"p_alive": {"lt": 0.3}}}                 lifetime value of the current CLV run: the
    {"clv": {"value_12m": {"gte": 200}}}              probability of still being a customer and its
    {"clv": {"clv": {"gte": 200}, "decile": {"gte": 9}}}  change since the previous run, expected
    {"clv": {"spend_per_year": {"gte": 200}}}         purchases, expected value of the next 12
                                                      months, the discounted value over the run's
                                                      horizon, its decile (10 = top tenth), and what
                                                      was spent per year so far

Each reads the current version of what insights computed; before the first computation it
selects nobody.
"""

from typing import Any

from django.db.models import Case, CharField, Count, Q, Value, When
from django.utils.translation import gettext, gettext_lazy

from core.errors import json_literal
from insights.models import (
    BANDS,
    ClvRun,
    ClvScore,
    Lookalike,
    LookalikeMember,
    Persona,
    PersonaMember,
    PredictiveModel,
    RfmScore,
    RfmSegment,
    Score,
)
from insights.rfm import DEFAULT_SEGMENTS, current_rfm_run
from segments.criteria import Criterion, IndexDimension

COMPARISONS = {"eq": "exact", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bounds(spec: dict, path: str, errors: list[str], low: float, high: float, keys=COMPARISONS) -> None:
    for key in keys:
        if key in spec and (not _number(spec[key]) or not low <= spec[key] <= high):
            errors.append(
                gettext("%(path)s.%(key)s: expected a number from %(value)s to %(value2)s.")
                % {"path": path, "key": key, "value": format(low, "g"), "value2": format(high, "g")}
            )


def _id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


# --- rfm ---------------------------------------------------------------------------------------


def rfm_validate(spec: Any, path: str, workspace_id: int | None, errors: list[str]) -> None:
    example = '{"segment": "champions"} or {"r": {"gte": 4}}'
    if not isinstance(spec, dict) or not spec:
        errors.append(gettext("%(path)s: expected %(example)s.") % {"path": path, "example": example})
        return
    for key in sorted(set(spec) - {"segment", "r", "f", "m"}):
        errors.append(gettext("%(path)s.%(key)s: unknown key; use segment, r, f or m.") % {"path": path, "key": key})
    if "segment" in spec:
        codes = spec["segment"] if isinstance(spec["segment"], list) else [spec["segment"]]
        if not codes or len(codes) > 10 or not all(isinstance(c, str) and 0 < len(c) <= 40 for c in codes):
            errors.append(
                gettext('%(path)s.segment: expected a segment code or a list of codes, such as "champions".')
                % {"path": path}
            )
        elif workspace_id is not None:
            known = set(RfmSegment.objects.filter(workspace_id=workspace_id).values_list("code", flat=True)) or {
                code for code, *_ in DEFAULT_SEGMENTS
            }
            for code in codes:
                if code not in known:
                    errors.append(
                        gettext("%(path)s.segment: unknown RFM segment %(value)s; use one of %(value2)s.")
                        % {"path": path, "value": json_literal(code), "value2": ", ".join(sorted(known))}
                    )
    for score in ("r", "f", "m"):
        if score in spec:
            comparison = spec[score]
            if not isinstance(comparison, dict) or not comparison or set(comparison) - set(COMPARISONS):
                errors.append(
                    gettext('%(path)s.%(score)s: expected a comparison such as {"gte": 4} (eq, gt, gte, lt, lte).')
                    % {"path": path, "score": score}
                )
            else:
                _bounds(comparison, f"{path}.{score}", errors, 1, 5)


def rfm_compile(spec: dict, ctx) -> Any:
    run = current_rfm_run(workspace_id=ctx.workspace_id)
    scores = RfmScore.objects.filter(run_id=run.pk if run else 0)
    if "segment" in spec:
        codes = spec["segment"] if isinstance(spec["segment"], list) else [spec["segment"]]
        scores = scores.filter(segment__in=codes)
    for score in ("r", "f", "m"):
        for key, bound in spec.get(score, {}).items():
            scores = scores.filter(**{f"{score}__{COMPARISONS[key]}": bound})
    return scores.values("profile_id")


# --- probability ----------------------------------------------------------------------------------


def _model_of(spec: dict, workspace_id: int) -> PredictiveModel | None:
    found = PredictiveModel.objects.filter(workspace_id=workspace_id)
    if "model" in spec:
        return found.filter(pk=spec["model"]).first()
    return found.filter(kind=PredictiveModel.Kind.MEMBERSHIP, segment_id=spec["segment"]).first()


def probability_validate(spec: Any, path: str, workspace_id: int | None, errors: list[str]) -> None:
    example = '{"segment": 17, "gte": 0.7} or {"model": 4, "gte": 0.5}'
    if not isinstance(spec, dict):
        errors.append(gettext("%(path)s: expected %(example)s.") % {"path": path, "example": example})
        return
    subject = [key for key in ("segment", "model") if key in spec]
    for key in sorted(set(spec) - {"segment", "model", *COMPARISONS}):
        errors.append(
            gettext("%(path)s.%(key)s: unknown key; use segment or model, and gte, gt, lte, lt.")
            % {"path": path, "key": key}
        )
    if len(subject) != 1:
        errors.append(
            gettext("%(path)s: name either a segment (its membership model) or a model: %(example)s.")
            % {"path": path, "example": example}
        )
        return
    if not _id(spec[subject[0]]):
        errors.append(gettext("%(path)s.%(value)s: expected an id.") % {"path": path, "value": subject[0]})
        return
    if not set(spec) & set(COMPARISONS):
        errors.append(gettext('%(path)s: add a threshold such as "gte": 0.7.') % {"path": path})
    _bounds(spec, path, errors, 0, 1)
    if workspace_id is not None and not errors and _model_of(spec, workspace_id) is None:
        if subject[0] == "model":
            errors.append(
                gettext("%(path)s.model: no model %(value)s in this workspace.")
                % {"path": path, "value": spec["model"]}
            )
        else:
            errors.append(
                gettext(
                    "%(path)s.segment: segment %(value)s has no membership model yet; create one (POST /api/insights/models/ with kind membership and the segment)."
                )
                % {"path": path, "value": spec["segment"]}
            )


def probability_compile(spec: dict, ctx) -> Any:
    model = _model_of(spec, ctx.workspace_id)
    scores = Score.objects.filter(model_id=model.pk if model else 0, version=model.version if model else 0)
    for key in COMPARISONS:
        if key in spec:
            scores = scores.filter(**{f"score__{COMPARISONS[key]}": spec[key]})
    return scores.values("profile_id")


# --- persona -------------------------------------------------------------------------------------


def persona_validate(spec: Any, path: str, workspace_id: int | None, errors: list[str]) -> None:
    if not _id(spec):
        errors.append(gettext("%(path)s: expected a persona id.") % {"path": path})
    elif workspace_id is not None and not Persona.objects.filter(workspace_id=workspace_id, pk=spec).exists():
        errors.append(gettext("%(path)s: no persona %(spec)s in this workspace.") % {"path": path, "spec": spec})


def persona_compile(spec: int, ctx) -> Any:
    persona = Persona.objects.filter(workspace_id=ctx.workspace_id, pk=spec, active=True).first()
    return PersonaMember.objects.filter(
        run_id=persona.run_id if persona else 0, persona_id=persona.pk if persona else 0
    ).values("profile_id")


# --- lookalike -----------------------------------------------------------------------------------


def lookalike_validate(spec: Any, path: str, workspace_id: int | None, errors: list[str]) -> None:
    if not isinstance(spec, dict) or set(spec) != {"id", "band"}:
        errors.append(
            gettext('%(path)s: expected {"id": <lookalike>, "band": 1 to %(bands)s}.') % {"path": path, "bands": BANDS}
        )
        return
    if not _id(spec["id"]):
        errors.append(gettext("%(path)s.id: expected a lookalike id.") % {"path": path})
    elif workspace_id is not None and not Lookalike.objects.filter(workspace_id=workspace_id, pk=spec["id"]).exists():
        errors.append(
            gettext("%(path)s.id: no lookalike %(value)s in this workspace.") % {"path": path, "value": spec["id"]}
        )
    if not (isinstance(spec["band"], int) and not isinstance(spec["band"], bool) and 1 <= spec["band"] <= BANDS):
        errors.append(
            gettext("%(path)s.band: expected a whole number of percent from 1 to %(bands)s.")
            % {"path": path, "bands": BANDS}
        )


def lookalike_compile(spec: dict, ctx) -> Any:
    lookalike = Lookalike.objects.filter(workspace_id=ctx.workspace_id, pk=spec["id"]).first()
    return LookalikeMember.objects.filter(
        Q(lookalike_id=lookalike.pk if lookalike else 0, version=lookalike.version if lookalike else 0),
        band__lte=spec["band"],
    ).values("profile_id")


# --- clv ---------------------------------------------------------------------------------------

# key -> (lowest, highest) a comparison takes
CLV_MEASURES = {
    "p_alive": (0.0, 1.0),
    "p_alive_change": (-1.0, 1.0),
    "purchases": (0.0, 1e9),
    "value_12m": (0.0, 1e12),
    "clv": (0.0, 1e12),
    "decile": (1, 10),
    "spend_per_year": (0.0, 1e12),
}


def clv_validate(spec: Any, path: str, workspace_id: int | None, errors: list[str]) -> None:
    example = '{"p_alive": {"lt": 0.3}} or {"clv": {"gte": 200}}'
    if not isinstance(spec, dict) or not spec:
        errors.append(gettext("%(path)s: expected %(example)s.") % {"path": path, "example": example})
        return
    for key in sorted(set(spec) - set(CLV_MEASURES)):
        errors.append(
            gettext("%(path)s.%(key)s: unknown key; use %(value)s.")
            % {"path": path, "key": key, "value": ", ".join(CLV_MEASURES)}
        )
    for key, (low, high) in CLV_MEASURES.items():
        if key in spec:
            comparison = spec[key]
            if not isinstance(comparison, dict) or not comparison or set(comparison) - set(COMPARISONS):
                errors.append(
                    gettext(
                        '%(path)s.%(key)s: expected a comparison such as {"gte": %(value)s} (eq, gt, gte, lt, lte).'
                    )
                    % {"path": path, "key": key, "value": format(low, "g")}
                )
            else:
                _bounds(comparison, f"{path}.{key}", errors, low, high)


def clv_compile(spec: dict, ctx) -> Any:
    run = ClvRun.current(workspace_id=ctx.workspace_id)
    scores = ClvScore.objects.filter(run_id=run.pk if run else 0)
    for measure in CLV_MEASURES:
        for key, bound in spec.get(measure, {}).items():
            scores = scores.filter(**{f"{measure}__{COMPARISONS[key]}": bound})
    return scores.values("profile_id")


# The index table's rows of lifetime value: tiers of deciles, and bands of p_alive.
# (value, label, lowest, highest), both included for deciles, highest excluded for p_alive.
CLV_TIERS = (
    ("top", "Top 10 %", 10, 10),
    ("high", "Next 20 %", 8, 9),
    ("middle", "Middle 40 %", 4, 7),
    ("low", "Bottom 30 %", 1, 3),
)
P_ALIVE_BANDS = (
    ("active", "Likely active (0.7 or more)", 0.7, None),
    ("at_risk", "At risk (0.3 to 0.7)", 0.3, 0.7),
    ("churned", "Likely churned (under 0.3)", 0.0, 0.3),
)


def _scored(profiles, workspace_id: int):
    run = ClvRun.current(workspace_id=workspace_id)
    return ClvScore.objects.filter(run_id=run.pk if run else 0, profile_id__in=profiles.values("pk"))


def clv_tier_counts(profiles, workspace_id: int) -> dict[str, int]:
    tier = Case(
        *(When(decile__gte=low, decile__lte=high, then=Value(name)) for name, _, low, high in CLV_TIERS),
        output_field=CharField(),
    )
    rows = _scored(profiles, workspace_id).annotate(_v=tier).values("_v").annotate(n=Count("*"))
    return {row["_v"]: row["n"] for row in rows if row["_v"]}


def clv_tier_rule(value: str) -> dict:
    _, _, low, high = next(t for t in CLV_TIERS if t[0] == value)
    return {"clv": {"decile": {"eq": low} if low == high else {"gte": low, "lte": high}}}


def p_alive_counts(profiles, workspace_id: int) -> dict[str, int]:
    band = Case(
        *(
            When(Q(p_alive__gte=low) & (Q(p_alive__lt=high) if high is not None else Q()), then=Value(name))
            for name, _, low, high in P_ALIVE_BANDS
        ),
        output_field=CharField(),
    )
    rows = _scored(profiles, workspace_id).annotate(_v=band).values("_v").annotate(n=Count("*"))
    return {row["_v"]: row["n"] for row in rows if row["_v"]}


def p_alive_rule(value: str) -> dict:
    _, _, low, high = next(b for b in P_ALIVE_BANDS if b[0] == value)
    comparison: dict[str, float] = {"gte": low} if low else {}
    if high is not None:
        comparison["lt"] = high
    return {"clv": {"p_alive": comparison}}


CLV_DIMENSIONS = (
    IndexDimension(
        "clv_tier",
        "Lifetime value",
        tuple((name, label) for name, label, _, _ in CLV_TIERS),
        clv_tier_counts,
        clv_tier_rule,
    ),
    IndexDimension(
        "clv_p_alive",
        "Still a customer",
        tuple((name, label) for name, label, _, _ in P_ALIVE_BANDS),
        p_alive_counts,
        p_alive_rule,
    ),
)


def rfm_choices(workspace_id: int) -> list[tuple[str, dict]]:
    named = list(RfmSegment.objects.filter(workspace_id=workspace_id).order_by("position").values_list("code", "name"))
    return [
        (str(name), {"rfm": {"segment": code}}) for code, name in named or [(c, n) for c, n, *_ in DEFAULT_SEGMENTS]
    ]


def persona_choices(workspace_id: int) -> list[tuple[str, dict]]:
    personas = Persona.objects.filter(workspace_id=workspace_id, active=True).order_by("number")
    return [(persona.name, {"persona": persona.pk}) for persona in personas]


def clv_choices(workspace_id: int) -> list[tuple[str, dict]]:
    return [
        (f"{dimension.label}: {label}", dimension.rule(value))
        for dimension in CLV_DIMENSIONS
        for value, label in dimension.values
    ]


def lookalike_choices(workspace_id: int) -> list[tuple[str, dict]]:
    lookalikes = Lookalike.objects.filter(workspace_id=workspace_id).order_by("pk")
    return [
        (f"{lookalike}: the {band} % most similar", {"lookalike": {"id": lookalike.pk, "band": band}})
        for lookalike in lookalikes
        for band in range(1, BANDS + 1)
    ]


CRITERIA = [
    Criterion(
        "rfm",
        rfm_validate,
        rfm_compile,
        facets=(("orders",), ("event", "purchase")),
        label=gettext_lazy("RFM segment"),
        choices=rfm_choices,
    ),
    Criterion("probability", probability_validate, probability_compile),
    Criterion("persona", persona_validate, persona_compile, label=gettext_lazy("Persona"), choices=persona_choices),
    Criterion(
        "lookalike", lookalike_validate, lookalike_compile, label=gettext_lazy("Lookalike"), choices=lookalike_choices
    ),
    Criterion(
        "clv",
        clv_validate,
        clv_compile,
        facets=(("orders",), ("event", "purchase")),
        dimensions=CLV_DIMENSIONS,
        label=gettext_lazy("Lifetime value"),
        choices=clv_choices,
    ),
]
