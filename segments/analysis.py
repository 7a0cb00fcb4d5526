"""Quantification of a segment: which criteria are over-represented, by index and volume.

For each value of each categorical criterion: the count in the segment (n_seg),
its share there (p_seg = n_seg / N_seg), its share in the workspace's base
(p_base), the index p_seg / p_base x 100 and the z-score of the difference,
(p_seg - p_base) / sqrt(p_base (1 - p_base) / N_seg). A row is over-represented
when index >= 120, n_seg >= 100 and |z| >= 2 (thresholds configurable); rows
rank by excess members, n_seg - N_seg x p_base. Every count is one GROUP BY.

Each row carries the rule that selects exactly the people it counts (`row_rule`), and reads
as the team declared its vocabulary (labels of survey questions, answers and attribute
options). Values that come from what people typed (a region, an interest, a survey answer)
are shown only when the team declared them or when at least core.personal_data.AGGREGATE_FLOOR
people of the base share them: no one's own words reach an aggregate.
"""

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Case, CharField, Count, F, QuerySet, Value, When
from django.utils import timezone

from core.personal_data import AGGREGATE_FLOOR
from core.sql import json_element_text, json_elements
from core.time import years_ago
from customers.models import (
    Channel,
    Event,
    EventType,
    Gender,
    LifecycleStage,
    Profile,
    SocioProfessionalCategory,
    SurveyResponse,
)
from customers.selectors import ValueLabels, value_labels
from segments.criteria import criteria, index_dimensions
from segments.rules import ANY_EVENT, definition_leaves

AGE_BANDS = [
    ("<18", 0, 17),
    ("18-24", 18, 24),
    ("25-34", 25, 34),
    ("35-44", 35, 44),
    ("45-54", 45, 54),
    ("55-64", 55, 64),
    ("65+", 65, 200),
]
CHANNEL_WINDOW = timedelta(days=90)
ORDER_WINDOW = timedelta(days=365)
SURVEY_VALUES = 200  # the most answered survey values, at most

# Transactional bands over the last 365 days (and the last order ever): (label, low, high), high excluded.
Band = tuple[str, float, float | None]
ORDER_COUNT_BANDS: list[Band] = [("0", 0, 1), ("1", 1, 2), ("2-3", 2, 4), ("4-9", 4, 10), ("10+", 10, None)]
SPEND_BANDS: list[Band] = [
    ("0", 0, 0.005),
    ("<50", 0.005, 50),
    ("50-200", 50, 200),
    ("200-500", 200, 500),
    ("500+", 500, None),
]
BASKET_BANDS: list[Band] = [("<30", 0, 30), ("30-60", 30, 60), ("60-100", 60, 100), ("100+", 100, None)]
RECENCY_BANDS: list[Band] = [
    ("<30 days", 0, 30),
    ("30-90 days", 30, 90),
    ("90-365 days", 90, 365),
    ("365+ days", 365, None),
]

CRITERION_LABELS = {
    "gender": "Gender",
    "age_band": "Age",
    "socio_professional_category": "Socio-professional category",
    "region": "Region",
    "lifecycle_stage": "Lifecycle stage",
    "interest": "Interest",
    "channel": "Channel used (90 days)",
    "event_90d": "Did (90 days)",
    "orders_365d": "Orders (365 days)",
    "spend_365d": "Spend (365 days)",
    "basket_365d": "Average basket (365 days)",
    "last_order": "Last order",
    "survey": "Survey answer",
}
# The criteria whose values are what people typed: shown only when declared, or shared by
# AGGREGATE_FLOOR people of the base or more.
TYPED_CRITERIA = ("region", "interest", "survey")
_VALUE_LABELS: dict[str, Mapping[str, Any]] = {  # labels translated where shown
    "gender": dict(Gender.choices),
    "socio_professional_category": dict(SocioProfessionalCategory.choices),
    "lifecycle_stage": dict(LifecycleStage.choices),
    "channel": dict(Channel.choices),
    "event_90d": dict(EventType.choices),
}


@dataclass(frozen=True)
class Thresholds:
    min_index: float = 120.0
    min_count: int = 100
    min_abs_z: float = 2.0


@dataclass
class IndexRow:
    criterion: str
    value: str
    n_seg: int
    p_seg: float
    n_base: int
    p_base: float
    index: float | None
    z: float | None
    excess: float
    over_represented: bool
    label: str = ""
    defining: bool = False  # the segment's own rules constrain it: a definition, not a finding
    rule: dict | None = None  # the rule that selects this value, for a suggestion


def index_rows(
    *,
    counts: Iterable[tuple[str, str, int, int]],
    segment_size: int,
    base_size: int,
    thresholds: Thresholds,
    defining: Callable[[str, str], bool] = lambda criterion, value: False,
    labels: ValueLabels | None = None,
) -> list[IndexRow]:
    """The arithmetic, from (criterion, value, n_seg, n_base) counts; kept pure so it can be checked by hand.
    A row the segment's own rules define is marked so, and is never over-represented: it is ranked last."""
    rows = []
    for criterion, value, n_seg, n_base in counts:
        p_seg = n_seg / segment_size if segment_size else 0.0
        p_base = n_base / base_size if base_size else 0.0
        index = p_seg / p_base * 100 if p_base else None
        z = (
            (p_seg - p_base) / math.sqrt(p_base * (1 - p_base) / segment_size)
            if segment_size and 0 < p_base < 1
            else None
        )
        is_defining = defining(criterion, value)
        over = (
            not is_defining
            and index is not None
            and z is not None
            and index >= thresholds.min_index
            and n_seg >= thresholds.min_count
            and abs(z) >= thresholds.min_abs_z
        )
        rows.append(
            IndexRow(
                criterion,
                value,
                n_seg,
                round(p_seg, 6),
                n_base,
                round(p_base, 6),
                None if index is None else round(index, 2),
                None if z is None else round(z, 3),
                round(n_seg - segment_size * p_base, 2),
                over,
                label=row_label(criterion, value, labels),
                defining=is_defining,
                rule=row_rule(criterion, value),
            )
        )
    rows.sort(key=lambda row: (row.defining, not row.over_represented, -row.excess))
    return rows


def _age_band(today) -> Case:
    """Ages on `today` as the rule language computes them (segments.compiler._age)."""
    whens = [
        When(birth_date__lte=years_ago(today, low), birth_date__gt=years_ago(today, high + 1), then=Value(label))
        for label, low, high in AGE_BANDS
    ]
    return Case(*whens, default=Value("unknown"), output_field=CharField())


def _grouped(qs: QuerySet[Profile], expression) -> dict[str, int]:
    return {
        (value if value not in (None, "") else "unknown"): n
        for value, n in qs.annotate(_v=expression).values_list("_v").annotate(n=Count("id")).values_list("_v", "n")
    }


def _interests(qs: QuerySet[Profile]) -> dict[str, int]:
    sql, params = qs.values("pk").query.sql_with_params()
    value = json_element_text("i.value")
    query = (
        f"SELECT {value}, count(DISTINCT p.id) FROM customers_profile p {json_elements('p.attributes', 'i', 'interests')} "
        f"WHERE p.id IN ({sql}) GROUP BY {value}"
    )
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return dict(cursor.fetchall())


def _channels(qs: QuerySet[Profile], workspace_id: int, now: datetime) -> dict[str, int]:
    """People who used each channel in the last 90 days (events of any type)."""
    events = Event.objects.filter(
        workspace_id=workspace_id,
        occurred_at__gte=now - CHANNEL_WINDOW,
        occurred_at__lte=now,
        profile_id__in=qs.values("pk"),
    )
    return dict(events.values("channel").annotate(n=Count("profile_id", distinct=True)).values_list("channel", "n"))


def criterion_counts(
    qs: QuerySet[Profile], workspace_id: int, *, now: datetime | None = None, survey_answers: set[str] | None = None
) -> dict[str, dict[str, int]]:
    """Every facet a marketer segments on: demographic, geographic, attitudinal (interests, survey answers),
    behavioural (channels and event types in 90 days) and transactional (bands of orders, spend, basket,
    recency). Each is one set-based GROUP BY."""
    now = now or timezone.now()
    return {
        "gender": _grouped(qs, F("gender")),
        "age_band": _grouped(qs, _age_band(now.date())),
        "socio_professional_category": _grouped(qs, F("socio_professional_category")),
        "region": _grouped(qs, F("region")),
        "lifecycle_stage": _grouped(qs, F("lifecycle_stage")),
        "interest": _interests(qs),
        "channel": _channels(qs, workspace_id, now),
        "event_90d": _events(qs, workspace_id, now),
        **_order_bands(qs, workspace_id, now),
        "survey": _surveys(qs, workspace_id, survey_answers),
        # What the criteria families learnt above segments (lifetime value, say), when they add rows.
        **{name: dimension.counts(qs, workspace_id) for name, (_, dimension) in index_dimensions().items()},
    }


def segment_index(
    *,
    members: QuerySet[Profile],
    base: QuerySet[Profile],
    workspace_id: int,
    thresholds: Thresholds,
    defining: Callable[[str, str], bool] = lambda criterion, value: False,
) -> dict[str, Any]:
    segment_size = members.count()
    base_size = base.count()
    now = timezone.now()
    labels = value_labels(workspace_id=workspace_id)
    base_counts = shown_values(criterion_counts(base, workspace_id, now=now), labels)
    seg_counts = criterion_counts(members, workspace_id, now=now, survey_answers=set(base_counts["survey"]))
    counts = [
        (criterion, value, seg_counts[criterion].get(value, 0), n_base)
        for criterion, values in base_counts.items()
        for value, n_base in values.items()
    ]
    rows = index_rows(
        counts=counts,
        segment_size=segment_size,
        base_size=base_size,
        thresholds=thresholds,
        defining=defining,
        labels=labels,
    )
    return {"segment_size": segment_size, "base_size": base_size, "rows": [asdict(row) for row in rows]}


def shown_values(counts: dict[str, dict[str, int]], labels: ValueLabels) -> dict[str, dict[str, int]]:
    """The base's counts without the typed values that are neither declared nor shared by
    AGGREGATE_FLOOR people: what one person wrote (a region, an interest, an answer) is never a row."""

    def declared(criterion: str, value: str) -> bool:
        if criterion == "interest":
            return labels.option("interests", value) is not None
        if criterion == "survey":
            answer = json.loads(value)
            return labels.answer(answer["survey"], answer["question"], answer["answer"]) is not None
        return False

    return {
        criterion: {
            value: n
            for value, n in values.items()
            if criterion not in TYPED_CRITERIA or n >= AGGREGATE_FLOOR or declared(criterion, value)
        }
        for criterion, values in counts.items()
    }


# --- what each row means: labels and the rule that selects it -------------------------------------


def row_label(criterion: str, value: str, labels: ValueLabels | None = None) -> str:
    """`Gender: Female`, `Orders (365 days): 2-3`, `Preferred channel: Mobile app`: what a marketer
    reads, with the labels the team declared, not the stored code."""
    if value == "unknown":
        return f"{CRITERION_LABELS.get(criterion, criterion)}: Unknown"
    added = index_dimensions().get(criterion)
    if added is not None:
        dimension = added[1]
        return f"{dimension.label}: {dict(dimension.values).get(value, value)}"
    if criterion == "survey":
        answer = json.loads(value)
        question = labels.question(answer["survey"], answer["question"]) if labels else None
        shown = labels.answer(answer["survey"], answer["question"], answer["answer"]) if labels else None
        if shown is None:
            shown = answer["answer"] if isinstance(answer["answer"], str) else ValueLabels.answer_key(answer["answer"])
        return f"{question or answer['survey'] + '.' + answer['question']}: {shown}"
    if criterion == "interest" and labels is not None:
        shown = labels.option("interests", value) or value
    else:
        shown = _VALUE_LABELS.get(criterion, {}).get(value, value)
    return f"{CRITERION_LABELS.get(criterion, criterion)}: {shown}"


def _range_rule(key: str, band: Band, within: str) -> dict:
    _, low, high = band
    comparison: dict[str, float] = {}
    if low:
        comparison["gte"] = low
    if high is not None:
        comparison["lt"] = high
    return {"orders": {"within": within, key: comparison or {"gte": 0}}}


def row_rule(criterion: str, value: str) -> dict | None:
    """The rule-language condition that selects the profiles of a row (None when none does)."""
    simple = {"gender", "socio_professional_category", "region", "lifecycle_stage"}
    added = index_dimensions().get(criterion)
    if added is not None:
        return added[1].rule(value) if value in dict(added[1].values) else None
    if value == "unknown":
        # Counted as "unknown": empty or missing (gender has a value of its own for it).
        if criterion == "gender":
            return {"field": "gender", "op": "eq", "value": "unknown"}
        if criterion in simple:
            return {"field": criterion, "op": "is_set", "value": False}
        if criterion == "age_band":
            return {"field": "age", "op": "is_set", "value": False}
        return None
    if criterion in simple:
        return {"field": criterion, "op": "eq", "value": value}
    if criterion == "interest":
        return {"field": "attributes.interests", "op": "contains", "value": value}
    if criterion == "age_band":
        for label, low, high in AGE_BANDS:
            if label == value:
                return (
                    {"field": "age", "op": "between", "value": [low, high]}
                    if high < 200
                    else {"field": "age", "op": "gte", "value": low}
                )
        return None
    if criterion == "channel":
        return {"event": ANY_EVENT, "channel": value, "within": "P90D"}
    if criterion == "event_90d":
        return {"event": value, "within": "P90D"}
    if criterion == "survey":
        answer = json.loads(value)
        return {"survey": answer["survey"], "question": answer["question"], "op": "eq", "value": answer["answer"]}
    bands: dict[str, list[Band]] = {
        "orders_365d": ORDER_COUNT_BANDS,
        "spend_365d": SPEND_BANDS,
        "basket_365d": BASKET_BANDS,
    }
    keys = {"orders_365d": "count", "spend_365d": "amount_sum", "basket_365d": "amount_avg"}
    for name, table in bands.items():
        if criterion == name:
            band = next((b for b in table if b[0] == value), None)
            if band is None:
                return None
            if name == "orders_365d" and band[0] == "0":
                return {"orders": {"within": "P365D", "count": {"eq": 0}}}
            return _range_rule(keys[name], band, "P365D")
    if criterion == "last_order":
        if value == "never":
            return {"orders": {"count": {"eq": 0}}}
        recency = next((b for b in RECENCY_BANDS if b[0] == value), None)
        if recency is None:
            return None
        _, newest, oldest = recency
        parts = []
        if oldest is not None:
            parts.append({"orders": {"last": {"within": f"P{int(oldest)}D"}}})
        if newest:
            parts.append({"orders": {"last": {"older_than": f"P{int(newest)}D"}}})
        return parts[0] if len(parts) == 1 else {"all": parts}
    return None


_FIELD_CRITERIA = {
    "gender": "gender",
    "age": "age_band",
    "socio_professional_category": "socio_professional_category",
    "lifecycle_stage": "lifecycle_stage",
    "region": "region",
    "city": "region",
    "postal_code": "region",
    "country": "region",
    "attributes.interests": "interest",
}
ORDER_CRITERIA = ("orders_365d", "spend_365d", "basket_365d", "last_order")


def defining_criteria(definition: Any, *, definitions: Mapping[int, Any]) -> Callable[[str, str], bool]:
    """Which rows the segment's own rules define: a segment of women has 100 % women by definition.

    Every dimension a rule constrains (with `not`, and through the segments it refers to, read in
    `definitions`) is defining: its rows are left out of the ranking and of the suggestion.
    """
    whole: set[str] = set()
    values: set[tuple[str, str]] = set()
    prefixes: set[tuple[str, str]] = set()
    families = criteria()
    for node in definition_leaves(definition, definitions=definitions):
        if "field" in node and node["field"] in _FIELD_CRITERIA:
            whole.add(_FIELD_CRITERIA[node["field"]])
        if "geo" in node:
            whole.add("region")
        # Orders, and the criteria computed from them (an RFM score, a lifetime value).
        reads_orders = "orders" in node or any(key in node and ("orders",) in families[key].facets for key in families)
        if reads_orders:
            whole.update(ORDER_CRITERIA)
        if "event" in node:
            if node["event"] == ANY_EVENT:
                whole.add("event_90d")
            else:
                values.add(("event_90d", node["event"]))
            if "channel" in node:
                values.add(("channel", node["channel"]))
        if "survey" in node:
            prefixes.add(("survey", json.dumps({"survey": node["survey"], "question": node.get("question")})[:-1]))
        # The rows a family adds are defined by its own criteria, and by orders when it reads them.
        for name, (key, _) in index_dimensions().items():
            if key in node or (reads_orders and ("orders",) in families[key].facets):
                whole.add(name)

    def is_defining(criterion: str, value: str) -> bool:
        if criterion in whole or (criterion, value) in values:
            return True
        if criterion == "survey":
            answer = json.loads(value)
            key = json.dumps({"survey": answer["survey"], "question": answer["question"]})[:-1]
            return ("survey", key) in prefixes
        return False

    return is_defining


# --- more facets: transactions, behaviour, attitudes ----------------------------------------------


def _band_sql(expression: str, bands: list[Band], default: str) -> str:
    whens = " ".join(
        f"WHEN {expression} >= {low} AND {expression} < {high} THEN '{label}'"
        if high is not None
        else f"WHEN {expression} >= {low} THEN '{label}'"
        for label, low, high in bands
    )
    return f"CASE {whens} ELSE '{default}' END"


def _order_bands(qs: QuerySet[Profile], workspace_id: int, now: datetime) -> dict[str, dict[str, int]]:
    """Order count, spend and average basket over 365 days and the last order's age, as bands: one
    pass over the completed orders, grouped by person, then by band."""
    members, params = qs.values("pk").query.sql_with_params()
    adapt = connection.ops.adapt_datetimefield_value
    if connection.vendor == "postgresql":
        age = "EXTRACT(EPOCH FROM (%s - MAX(o.ordered_at))) / 86400.0"
    else:
        age = "(julianday(%s) - julianday(MAX(o.ordered_at)))"
    recency = _band_sql("a.days_since", RECENCY_BANDS, "never")
    query = f"""
        WITH agg AS (
            SELECT o.profile_id,
                   SUM(CASE WHEN o.ordered_at >= %s THEN 1 ELSE 0 END) AS n,
                   SUM(CASE WHEN o.ordered_at >= %s THEN o.amount ELSE 0 END) AS total,
                   MAX(o.ordered_at) AS last_at,
                   {age} AS days_since
            FROM customers_order o
            WHERE o.workspace_id = %s AND o.status = 'completed' AND o.ordered_at <= %s
            GROUP BY o.profile_id
        ), bands AS (
            SELECT {_band_sql("COALESCE(a.n, 0)", ORDER_COUNT_BANDS, "0")} AS orders_365d,
                   {_band_sql("COALESCE(a.total, 0)", SPEND_BANDS, "0")} AS spend_365d,
                   CASE WHEN COALESCE(a.n, 0) = 0 THEN 'no order'
                        ELSE {_band_sql("(a.total * 1.0 / a.n)", BASKET_BANDS, "no order")} END AS basket_365d,
                   CASE WHEN a.last_at IS NULL THEN 'never' ELSE {recency} END AS last_order
            FROM customers_profile p LEFT JOIN agg a ON a.profile_id = p.id
            WHERE p.id IN ({members})
        )
        SELECT 'orders_365d', orders_365d, COUNT(*) FROM bands GROUP BY orders_365d
        UNION ALL SELECT 'spend_365d', spend_365d, COUNT(*) FROM bands GROUP BY spend_365d
        UNION ALL SELECT 'basket_365d', basket_365d, COUNT(*) FROM bands GROUP BY basket_365d
        UNION ALL SELECT 'last_order', last_order, COUNT(*) FROM bands GROUP BY last_order
    """
    since = adapt(now - ORDER_WINDOW)
    found: dict[str, dict[str, int]] = {name: {} for name in ORDER_CRITERIA}
    with connection.cursor() as cursor:
        cursor.execute(query, [since, since, adapt(now), workspace_id, adapt(now), *params])
        for criterion, band, n in cursor.fetchall():
            if band != "no order":
                found[criterion][band] = n
    return found


def _events(qs: QuerySet[Profile], workspace_id: int, now: datetime) -> dict[str, int]:
    """People who did each kind of event in the last 90 days."""
    events = Event.objects.filter(
        workspace_id=workspace_id,
        occurred_at__gte=now - CHANNEL_WINDOW,
        occurred_at__lte=now,
        profile_id__in=qs.values("pk"),
    )
    return dict(events.values("type").annotate(n=Count("profile_id", distinct=True)).values_list("type", "n"))


def _surveys(qs: QuerySet[Profile], workspace_id: int, answers: set[str] | None) -> dict[str, int]:
    """Respondents of each scalar answer (a text, a number, yes/no) of each survey question."""
    responses = SurveyResponse.objects.filter(workspace_id=workspace_id, profile_id__in=qs.values("pk"))
    counted = (
        responses.values("survey", "question", "answer").annotate(n=Count("profile_id", distinct=True)).order_by("-n")
    )
    found: dict[str, int] = {}
    for row in counted:
        if isinstance(row["answer"], (list, dict)) or row["answer"] is None:
            continue
        key = json.dumps({"survey": row["survey"], "question": row["question"], "answer": row["answer"]})
        if answers is None and len(found) >= SURVEY_VALUES:
            continue
        if answers is None or key in answers:
            found[key] = found.get(key, 0) + row["n"]
    return found
