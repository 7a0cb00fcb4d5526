"""Profile features: one row per profile, every facet, computed set-based as of a moment.

The definition (`feature_definition`) lists the columns, derived from the workspace's data:
the regions, interests, survey questions and product categories it has. The values are one
SELECT over profiles joined to one GROUP BY per source table (events, orders and their line
items, survey answers, consent), written with one INSERT ... SELECT into
`insights_profilefeatures`, a `real[]` per profile on PostgreSQL (a JSON array on SQLite).

Times are stored as days since 1970 ("since" columns) and turned into "days before as_of"
when a matrix is read, so a profile whose rows did not change keeps exact features when
time passes. An incremental refresh therefore recomputes only the profiles whose rows
changed since the last refresh, and those with an event or order that left a window (30,
90 or 365 days) meanwhile; a new definition rebuilds the whole table.

Left out: erased profiles, and people whose consent to profiling is refused or withdrawn.
"""

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from accounts.models import Workspace
from customers.models import (
    AttributeDefinition,
    AttributeType,
    Channel,
    EventType,
    Gender,
    LifecycleStage,
    Profile,
    SocioProfessionalCategory,
    SurveyResponse,
)
from insights.models import FeatureSet, ProfileFeatures
from privacy.models import ConsentPurpose, ConsentRecord, ConsentStatus

WINDOWS = (30, 90, 365)
CHANNEL_WINDOW = 90
TOP_REGIONS = 25
TOP_VALUES = 20
TOP_CATEGORIES = 15
TOP_QUESTIONS = 30
TOP_ANSWERS = 8
# A survey answer or attribute value becomes a feature only when this many people share it:
# free text a single person wrote is never a column (nor a centroid, nor a persona's name).
MIN_SHARED = 5
CONSENT_PAIRS = (
    ("direct_marketing", "email"),
    ("direct_marketing", "sms"),
    ("direct_marketing", "push"),
    ("ad_targeting", "display"),
    ("ad_targeting", "social"),
)
FACETS = ("demographic", "geographic", "attitudinal", "behavioural", "transactional", "consent")


@dataclass(frozen=True)
class Column:
    name: str
    facet: str
    label: str
    kind: str = "number"  # number | flag | since (days since 1970, read as days before as_of)
    # What it reads: ("event", type), ("orders",), ("survey", survey, question), ("field", name),
    # ("attribute", key), ("consent", purpose, channel), ("channel", channel).
    source: tuple = ()
    value: Any = None  # the value a one-hot column tests

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "facet": self.facet,
            "label": self.label,
            "kind": self.kind,
            "source": list(self.source),
            "value": self.value,
        }

    @classmethod
    def from_json(cls, data: dict) -> "Column":
        return cls(
            name=data["name"],
            facet=data["facet"],
            label=data["label"],
            kind=data["kind"],
            source=tuple(data["source"]),
            value=data.get("value"),
        )


def _top(queryset, field: str, n: int, minimum: int = 1) -> list:
    rows = (
        queryset.exclude(**{field: ""})
        .values(field)
        .annotate(_n=Count("*"))
        .filter(_n__gte=minimum)
        .order_by("-_n", field)[:n]
    )
    return [row[field] for row in rows]


def _survey_questions(workspace_id: int) -> list[tuple[str, str, str, list[str]]]:
    """(survey, question, "number" | "choice", closed answers) of the most answered questions."""
    answers = SurveyResponse.objects.filter(workspace_id=workspace_id)
    pairs = answers.values("survey", "question").annotate(_n=Count("*")).filter(_n__gte=MIN_SHARED)
    found: list[tuple[str, str, str, list[str]]] = []
    for row in pairs.order_by("-_n", "survey", "question")[:TOP_QUESTIONS]:
        survey, question = row["survey"], row["question"]
        sql, params = _answer_sql()
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {sql['kind']} AS k, {sql['text']} AS t, COUNT(*) FROM customers_surveyresponse "
                "WHERE workspace_id = %s AND survey = %s AND question = %s GROUP BY 1, 2 ORDER BY 3 DESC, 2",
                [workspace_id, survey, question],
            )
            rows = cursor.fetchall()
        numbers = sum(n for kind, _, n in rows if kind == "number")
        total = sum(n for _, _, n in rows)
        if numbers * 2 > total:
            found.append((survey, question, "number", []))
            continue
        closed = [text for kind, text, n in rows if kind == "text" and n >= MIN_SHARED][:TOP_ANSWERS]
        if closed:
            found.append((survey, question, "choice", closed))
    return found


def _answer_sql() -> tuple[dict[str, str], list]:
    """SQL for a survey answer's kind ("number" / "text" / other), text and number."""
    if connection.vendor == "postgresql":
        return {
            "kind": "CASE jsonb_typeof(answer) WHEN 'number' THEN 'number' WHEN 'string' THEN 'text' "
            "WHEN 'boolean' THEN 'text' ELSE 'other' END",
            "text": "CASE WHEN jsonb_typeof(answer) IN ('string', 'boolean') THEN answer #>> '{}' END",
            "number": "CASE WHEN jsonb_typeof(answer) = 'number' THEN (answer #>> '{}')::float8 END",
        }, []
    return {
        "kind": "CASE json_type(answer) WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' "
        "WHEN 'text' THEN 'text' WHEN 'true' THEN 'text' WHEN 'false' THEN 'text' ELSE 'other' END",
        "text": "CASE json_type(answer) WHEN 'text' THEN json_extract(answer, '$') WHEN 'true' THEN 'true' "
        "WHEN 'false' THEN 'false' END",
        "number": "CASE WHEN json_type(answer) IN ('integer', 'real') THEN json_extract(answer, '$') END",
    }, []


def _list_items(workspace_id: int, key: str) -> list[str]:
    """The most frequent items of a list attribute (interests), shared by MIN_SHARED people or more."""
    if connection.vendor == "postgresql":
        sql = (
            "SELECT item, COUNT(*) FROM customers_profile p CROSS JOIN LATERAL jsonb_array_elements_text("
            "CASE WHEN jsonb_typeof(p.attributes -> %s) = 'array' THEN p.attributes -> %s ELSE '[]'::jsonb END) item "
            "WHERE p.workspace_id = %s GROUP BY item HAVING COUNT(*) >= %s ORDER BY 2 DESC, 1 LIMIT %s"
        )
        params: list[Any] = [key, key, workspace_id, MIN_SHARED, TOP_VALUES]
    else:
        sql = (
            "SELECT j.value, COUNT(*) FROM customers_profile p, json_each(p.attributes, %s) j "
            "WHERE p.workspace_id = %s AND json_type(p.attributes, %s) = 'array' "
            "GROUP BY j.value HAVING COUNT(*) >= %s ORDER BY 2 DESC, 1 LIMIT %s"
        )
        params = [f'$."{key}"', workspace_id, f'$."{key}"', MIN_SHARED, TOP_VALUES]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [str(item) for item, _ in cursor.fetchall()]


def _categories(workspace_id: int) -> list[str]:
    if connection.vendor == "postgresql":
        sql = (
            "SELECT it.line ->> 'category' c, COUNT(*) FROM customers_order o CROSS JOIN LATERAL "
            "jsonb_array_elements(CASE WHEN jsonb_typeof(o.items) = 'array' THEN o.items ELSE '[]'::jsonb END) it(line) "
            "WHERE o.workspace_id = %s AND o.status = 'completed' AND jsonb_typeof(it.line -> 'category') = 'string' "
            "GROUP BY c HAVING COUNT(*) >= %s ORDER BY 2 DESC, 1 LIMIT %s"
        )
    else:
        sql = (
            "SELECT json_extract(it.value, '$.category') c, COUNT(*) FROM customers_order o, "
            "json_each(CASE WHEN json_type(o.items) = 'array' THEN o.items ELSE '[]' END) it "
            "WHERE o.workspace_id = %s AND o.status = 'completed' AND json_type(it.value, '$.category') = 'text' "
            "GROUP BY c HAVING COUNT(*) >= %s ORDER BY 2 DESC, 1 LIMIT %s"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, [workspace_id, MIN_SHARED, TOP_CATEGORIES])
        return [str(c) for c, _ in cursor.fetchall()]


def feature_definition(*, workspace: Workspace) -> list[Column]:
    """The columns of the workspace's features, from what its data holds."""
    ws = workspace.pk
    profiles = Profile.objects.filter(workspace_id=ws)
    cols: list[Column] = [
        Column("age", "demographic", "Age (years)", "number", ("field", "age")),
        Column("age_known", "demographic", "Age known", "flag", ("field", "age")),
    ]
    for value in Gender.values:
        cols.append(Column(f"gender_{value}", "demographic", f"Gender: {value}", "flag", ("field", "gender"), value))
    for value in SocioProfessionalCategory.values:
        cols.append(
            Column(
                f"spc_{value}",
                "demographic",
                f"Category: {value}",
                "flag",
                ("field", "socio_professional_category"),
                value,
            )
        )
    for value in LifecycleStage.values:
        cols.append(
            Column(f"stage_{value}", "demographic", f"Lifecycle: {value}", "flag", ("field", "lifecycle_stage"), value)
        )
    for i, region in enumerate(_top(profiles, "region", TOP_REGIONS, MIN_SHARED)):
        cols.append(Column(f"region_{i}", "geographic", f"Region: {region}", "flag", ("field", "region"), region))
    cols.append(
        Column(
            "city_density",
            "geographic",
            "Urban density: ln(1 + customers in the same city)",
            "number",
            ("field", "city"),
        )
    )
    for attribute in AttributeDefinition.objects.filter(workspace_id=ws).order_by("key"):
        key = attribute.key
        if attribute.type == AttributeType.NUMBER:
            cols.append(Column(f"attr_{key}", "attitudinal", attribute.label, "number", ("attribute", key)))
        elif attribute.type == AttributeType.BOOLEAN:
            cols.append(Column(f"attr_{key}", "attitudinal", attribute.label, "flag", ("attribute", key)))
        elif attribute.type == AttributeType.STRING_LIST:
            for i, item in enumerate(_list_items(ws, key)):
                cols.append(
                    Column(
                        f"attr_{key}_{i}", "attitudinal", f"{attribute.label}: {item}", "flag", ("attribute", key), item
                    )
                )
        elif attribute.type == AttributeType.STRING:
            values = _top(profiles.annotate(), f"attributes__{key}", TOP_VALUES, MIN_SHARED)
            for i, value in enumerate(v for v in values if isinstance(v, str)):
                cols.append(
                    Column(
                        f"attr_{key}_{i}",
                        "attitudinal",
                        f"{attribute.label}: {value}",
                        "flag",
                        ("attribute", key),
                        value,
                    )
                )
    for survey, question, kind, answers in _survey_questions(ws):
        source = ("survey", survey, question)
        if kind == "number":
            cols.append(Column(f"q_{survey}_{question}", "attitudinal", f"{survey} / {question}", "number", source))
        for i, answer in enumerate(answers):
            cols.append(
                Column(
                    f"q_{survey}_{question}_{i}",
                    "attitudinal",
                    f"{survey} / {question}: {answer}",
                    "flag",
                    source,
                    answer,
                )
            )
    for event in EventType.values:
        for days in WINDOWS:
            cols.append(
                Column(
                    f"ev_{event}_{days}d", "behavioural", f"{event} in {days} days", "number", ("event", event), days
                )
            )
        cols.append(
            Column(f"ev_{event}_last", "behavioural", f"Days since the last {event}", "since", ("event", event))
        )
    for channel in Channel.values:
        cols.append(
            Column(
                f"ch_{channel}_{CHANNEL_WINDOW}d",
                "behavioural",
                f"Events on {channel} in {CHANNEL_WINDOW} days",
                "number",
                ("channel", channel),
                CHANNEL_WINDOW,
            )
        )
    orders = ("orders",)
    cols += [
        Column("orders_all", "transactional", "Orders (all time)", "number", orders),
        Column("orders_365d", "transactional", "Orders in 365 days", "number", orders, 365),
        Column("amount_all", "transactional", "Amount spent (all time)", "number", orders),
        Column("amount_365d", "transactional", "Amount spent in 365 days", "number", orders, 365),
        Column("basket_avg", "transactional", "Average basket", "number", orders),
        Column("order_last", "transactional", "Days since the last order (recency)", "since", orders),
        Column("order_first", "transactional", "Days since the first order (tenure)", "since", orders),
    ]
    for i, category in enumerate(_categories(ws)):
        cols.append(Column(f"cat_{i}", "transactional", f"Bought: {category}", "flag", ("orders",), category))
    for purpose, channel in CONSENT_PAIRS:
        cols.append(
            Column(
                f"consent_{purpose}_{channel}",
                "consent",
                f"Consents to {purpose} by {channel}",
                "flag",
                ("consent", purpose, channel),
            )
        )
    return cols


def definition_hash(columns: Sequence[Column]) -> str:
    text = json.dumps([c.as_json() for c in columns], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --- SQL -------------------------------------------------------------------------------------


def _param(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _days(expr: str) -> str:
    """Days since 1970 of a timestamp expression, as a float."""
    if connection.vendor == "postgresql":
        return f"(EXTRACT(EPOCH FROM {expr}) / 86400.0)"
    return f"(julianday({expr}) - 2440587.5)"


def _cond_sum(condition: str, value: str = "1") -> str:
    return f"SUM(CASE WHEN {condition} THEN {value} ELSE 0 END)"


class _Sql:
    """A SELECT of (profile id, one expression per column) with its parameters, in order."""

    def __init__(self) -> None:
        self.params: list[Any] = []

    def p(self, value: Any) -> str:
        self.params.append(value)
        return "%s"


def features_select(
    *,
    workspace_id: int,
    columns: Sequence[Column],
    as_of: datetime,
    scope: str | None = None,
    scope_params: Sequence[Any] = (),
) -> tuple[str, list[Any]]:
    """SELECT p.id, <one value per column> for the workspace's profiles as of `as_of` (rows
    after it do not exist yet); `scope` (SQL of profile ids) limits it to some profiles."""
    pg = connection.vendor == "postgresql"
    at = _param(as_of)
    exprs: list[tuple[str, list]] = []  # per column: (expression, params)
    events: list[tuple[str, list]] = []
    orders: list[tuple[str, list]] = []
    lines: list[tuple[str, list]] = []
    answers: list[tuple[str, list]] = []
    joins: list[tuple[str, list]] = []
    answer_sql, _ = _answer_sql()

    def agg(bucket: list, alias: str, sql: str, params: list) -> str:
        name = f"{alias}{len(bucket)}"
        bucket.append((f"{sql} AS {name}", params))
        return f"{alias}.{name}"

    for col in columns:
        src = col.source
        if src[0] == "field":
            name = src[1]
            if col.name == "age":
                e = (f"(({_days('%s')} - {_days_date('p.birth_date')}) / 365.25)", [at])
            elif col.name == "age_known":
                e = ("(CASE WHEN p.birth_date IS NULL THEN 0 ELSE 1 END)", [])
            elif name == "city":
                e = ("ln(1 + COALESCE(d.n, 0))", [])
            else:
                e = (f"(CASE WHEN p.{name} = %s THEN 1 ELSE 0 END)", [col.value])
        elif src[0] == "attribute":
            e = _attribute_expr(col, pg)
        elif src[0] == "survey":
            cond = "survey = %s AND question = %s"
            if col.value is None:
                ref = agg(answers, "s", f"AVG(CASE WHEN {cond} THEN {answer_sql['number']} END)", [src[1], src[2]])
                e = (ref, [])
            else:
                ref = agg(
                    answers,
                    "s",
                    f"MAX(CASE WHEN {cond} AND {answer_sql['text']} = %s THEN 1 ELSE 0 END)",
                    [src[1], src[2], col.value],
                )
                e = (f"COALESCE({ref}, 0)", [])
        elif src[0] == "event":
            if col.kind == "since":
                ref = agg(events, "e", f"MAX(CASE WHEN type = %s THEN {_days('occurred_at')} END)", [src[1]])
                e = (ref, [])
            else:
                since = _param(as_of - timedelta(days=col.value))
                ref = agg(events, "e", _cond_sum("type = %s AND occurred_at >= %s"), [src[1], since])
                e = (f"COALESCE({ref}, 0)", [])
        elif src[0] == "channel":
            since = _param(as_of - timedelta(days=col.value))
            ref = agg(events, "e", _cond_sum("channel = %s AND occurred_at >= %s"), [src[1], since])
            e = (f"COALESCE({ref}, 0)", [])
        elif src[0] == "orders":
            e = _order_expr(col, as_of, agg, orders, lines)
        elif src[0] == "consent":
            alias = f"g{len(joins)}"
            grants = ConsentRecord.objects.filter(workspace_id=workspace_id).granted_at(
                purpose=src[1], channel=src[2], when=as_of
            )
            sql, params = grants.values("profile_id").query.sql_with_params()
            joins.append(
                (
                    f"LEFT JOIN (SELECT DISTINCT profile_id FROM ({sql}) _{alias}) {alias} ON {alias}.profile_id = p.id",
                    list(params),
                )
            )
            e = (f"(CASE WHEN {alias}.profile_id IS NULL THEN 0 ELSE 1 END)", [])
        else:
            raise ValueError(f"Unknown feature source {src!r}")
        exprs.append(e)

    scope_sql = f" AND profile_id IN ({scope})" if scope else ""
    parts: list[tuple[str, list]] = []
    if events:
        sel = ", ".join(s for s, _ in events)
        parts.append(
            (
                f"LEFT JOIN (SELECT profile_id, {sel} FROM customers_event WHERE workspace_id = %s AND occurred_at <= %s"
                f"{scope_sql} GROUP BY profile_id) e ON e.profile_id = p.id",
                [*(x for _, ps in events for x in ps), workspace_id, at, *scope_params],
            )
        )
    if orders:
        sel = ", ".join(s for s, _ in orders)
        parts.append(
            (
                f"LEFT JOIN (SELECT profile_id, {sel} FROM customers_order WHERE workspace_id = %s AND status = 'completed' "
                f"AND ordered_at <= %s{scope_sql} GROUP BY profile_id) o ON o.profile_id = p.id",
                [*(x for _, ps in orders for x in ps), workspace_id, at, *scope_params],
            )
        )
    if lines:
        sel = ", ".join(s for s, _ in lines)
        if pg:
            source = (
                "customers_order o2 CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(o2.items) = 'array' "
                "THEN o2.items ELSE '[]'::jsonb END) it(line)"
            )
        else:
            source = (
                "customers_order o2, json_each(CASE WHEN json_type(o2.items) = 'array' THEN o2.items ELSE '[]' END) it"
            )
        scope2 = f" AND o2.profile_id IN ({scope})" if scope else ""
        parts.append(
            (
                f"LEFT JOIN (SELECT o2.profile_id, {sel} FROM {source} WHERE o2.workspace_id = %s AND o2.status = 'completed' "
                f"AND o2.ordered_at <= %s{scope2} GROUP BY o2.profile_id) l ON l.profile_id = p.id",
                [*(x for _, ps in lines for x in ps), workspace_id, at, *scope_params],
            )
        )
    if answers:
        sel = ", ".join(s for s, _ in answers)
        parts.append(
            (
                f"LEFT JOIN (SELECT profile_id, {sel} FROM customers_surveyresponse WHERE workspace_id = %s "
                f"AND answered_at <= %s{scope_sql} GROUP BY profile_id) s ON s.profile_id = p.id",
                [*(x for _, ps in answers for x in ps), workspace_id, at, *scope_params],
            )
        )
    if any(c.source == ("field", "city") for c in columns):
        parts.append(
            (
                "LEFT JOIN (SELECT lower(city) AS city, COUNT(*) AS n FROM customers_profile WHERE workspace_id = %s "
                "AND city <> '' GROUP BY lower(city)) d ON d.city = lower(p.city) AND p.city <> ''",
                [workspace_id],
            )
        )
    parts.extend(joins)
    refused = (
        ConsentRecord.objects.filter(workspace_id=workspace_id, purpose=ConsentPurpose.PROFILING)
        .valid_at(as_of)
        .exclude(status=ConsentStatus.GRANTED)
    )
    refused_sql, refused_params = refused.values("profile_id").query.sql_with_params()
    select = ", ".join(f"{e} AS c{i}" for i, (e, _) in enumerate(exprs))
    sql = (
        f"SELECT p.id, {select} FROM customers_profile p "
        + " ".join(s for s, _ in parts)
        + " WHERE p.workspace_id = %s AND p.erased_at IS NULL"
        + f" AND NOT EXISTS (SELECT 1 FROM ({refused_sql}) _r WHERE _r.profile_id = p.id)"
        + (f" AND p.id IN ({scope})" if scope else "")
    )
    all_params = [
        *(x for _, ps in exprs for x in ps),
        *(x for _, ps in parts for x in ps),
        workspace_id,
        *refused_params,
        *scope_params,
    ]
    return sql, all_params


def _days_date(expr: str) -> str:
    if connection.vendor == "postgresql":
        return f"({expr} - DATE '1970-01-01')"
    return f"(julianday({expr}) - 2440587.5)"


def _attribute_expr(col: Column, pg: bool) -> tuple[str, list]:
    key = col.source[1]
    path = f'$."{key}"'
    if col.kind == "number":
        if pg:
            return (
                "(CASE WHEN jsonb_typeof(p.attributes -> %s) = 'number' THEN (p.attributes ->> %s)::float8 END)",
                [key, key],
            )
        return (
            "(CASE WHEN json_type(p.attributes, %s) IN ('integer', 'real') THEN json_extract(p.attributes, %s) END)",
            [path, path],
        )
    if col.value is None:  # a yes/no attribute
        if pg:
            return ("(CASE p.attributes ->> %s WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)", [key])
        return ("(CASE json_type(p.attributes, %s) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)", [path])
    if pg:
        return (
            "(CASE WHEN jsonb_typeof(p.attributes -> %s) = 'array' AND jsonb_exists(p.attributes -> %s, %s) THEN 1 "
            "WHEN p.attributes ->> %s = %s THEN 1 ELSE 0 END)",
            [key, key, col.value, key, col.value],
        )
    return (
        "(CASE WHEN json_type(p.attributes, %s) = 'array' AND EXISTS (SELECT 1 FROM json_each(p.attributes, %s) j "
        "WHERE j.value = %s) THEN 1 WHEN json_type(p.attributes, %s) = 'text' AND json_extract(p.attributes, %s) = %s "
        "THEN 1 ELSE 0 END)",
        [path, path, col.value, path, path, col.value],
    )


def _order_expr(col: Column, as_of: datetime, agg, orders: list, lines: list) -> tuple[str, list]:
    amount = "CAST(amount AS REAL)" if connection.vendor == "sqlite" else "amount::float8"
    if col.value is not None and col.name.startswith("cat_"):
        if connection.vendor == "postgresql":
            ref = agg(lines, "l", "MAX(CASE WHEN it.line ->> 'category' = %s THEN 1 ELSE 0 END)", [col.value])
        else:
            ref = agg(
                lines, "l", "MAX(CASE WHEN json_extract(it.value, '$.category') = %s THEN 1 ELSE 0 END)", [col.value]
            )
        return (f"COALESCE({ref}, 0)", [])
    since = _param(as_of - timedelta(days=365))
    if col.name == "orders_all":
        return (f"COALESCE({agg(orders, 'o', 'COUNT(*)', [])}, 0)", [])
    if col.name == "orders_365d":
        return (f"COALESCE({agg(orders, 'o', _cond_sum('ordered_at >= %s'), [since])}, 0)", [])
    if col.name == "amount_all":
        return (f"COALESCE({agg(orders, 'o', f'SUM({amount})', [])}, 0)", [])
    if col.name == "amount_365d":
        return (f"COALESCE({agg(orders, 'o', _cond_sum('ordered_at >= %s', amount), [since])}, 0)", [])
    if col.name == "basket_avg":
        return (agg(orders, "o", f"AVG({amount})", []), [])
    if col.name == "order_last":
        return (agg(orders, "o", f"MAX({_days('ordered_at')})", []), [])
    if col.name == "order_first":
        return (agg(orders, "o", f"MIN({_days('ordered_at')})", []), [])
    raise ValueError(col.name)


# --- the stored table --------------------------------------------------------------------------


def _insert(workspace_id: int, columns: Sequence[Column], as_of: datetime, scope: str | None, scope_params) -> None:
    sql, params = features_select(
        workspace_id=workspace_id, columns=columns, as_of=as_of, scope=scope, scope_params=scope_params
    )
    n = len(columns)
    if connection.vendor == "postgresql":
        vector = "ARRAY[" + ", ".join(f"f.c{i}" for i in range(n)) + "]::real[]"
    else:
        vector = "'[' || " + " || ',' || ".join(f"COALESCE(CAST(f.c{i} AS TEXT), 'null')" for i in range(n)) + " || ']'"
    table = ProfileFeatures._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO {table} (workspace_id, profile_id, "values") SELECT %s, f.id, {vector} FROM ({sql}) f',
            [workspace_id, *params],
        )


def _changed_since(workspace_id: int, since: datetime, as_of: datetime) -> tuple[str, list]:
    """SQL of the profile ids whose features may differ between `since` and `as_of`: rows
    written since (profiles, events, orders, answers, consent), and events or orders that left a
    window meanwhile."""
    s, a = _param(since), _param(as_of)
    parts = [
        ("SELECT id FROM customers_profile WHERE workspace_id = %s AND updated_at > %s", [workspace_id, s]),
        ("SELECT profile_id FROM customers_event WHERE workspace_id = %s AND received_at > %s", [workspace_id, s]),
        ("SELECT profile_id FROM customers_order WHERE workspace_id = %s AND updated_at > %s", [workspace_id, s]),
        (
            "SELECT profile_id FROM customers_surveyresponse WHERE workspace_id = %s AND created_at > %s",
            [workspace_id, s],
        ),
        ("SELECT profile_id FROM privacy_consentrecord WHERE workspace_id = %s AND created_at > %s", [workspace_id, s]),
        # Rows dated in the future when written enter their windows only now.
        (
            "SELECT profile_id FROM customers_event WHERE workspace_id = %s AND occurred_at > %s AND occurred_at <= %s",
            [workspace_id, s, a],
        ),
        (
            "SELECT profile_id FROM customers_order WHERE workspace_id = %s AND ordered_at > %s AND ordered_at <= %s",
            [workspace_id, s, a],
        ),
    ]
    for days in (*WINDOWS, CHANNEL_WINDOW):
        window = timedelta(days=days)
        low, high = _param(since - window), _param(as_of - window)
        parts.append(
            (
                "SELECT profile_id FROM customers_event WHERE workspace_id = %s AND occurred_at >= %s AND occurred_at < %s",
                [workspace_id, low, high],
            )
        )
    low, high = _param(since - timedelta(days=365)), _param(as_of - timedelta(days=365))
    parts.append(
        (
            "SELECT profile_id FROM customers_order WHERE workspace_id = %s AND ordered_at >= %s AND ordered_at < %s",
            [workspace_id, low, high],
        )
    )
    return " UNION ".join(sql for sql, _ in parts), [x for _, ps in parts for x in ps]


def features_refresh(
    *, workspace: Workspace, as_of: datetime | None = None, full: bool = False, progress=None
) -> FeatureSet:
    """Bring the workspace's feature table to `as_of` (now): rebuilt when the definition changed
    (or `full`), else only the profiles whose features may have changed."""
    import time

    started = time.monotonic()
    as_of = as_of or timezone.now()
    columns = feature_definition(workspace=workspace)
    digest = definition_hash(columns)
    feature_set, _ = FeatureSet.objects.get_or_create(workspace=workspace)
    rebuild = full or feature_set.definition_hash != digest or feature_set.as_of is None or as_of < feature_set.as_of
    if progress:
        progress(20, "Computing the features" + (" of every profile" if rebuild else " of the profiles that changed"))
    table = ProfileFeatures._meta.db_table
    with transaction.atomic():
        feature_set = FeatureSet.objects.select_for_update().get(pk=feature_set.pk)
        with connection.cursor() as cursor:
            if rebuild:
                cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [workspace.pk])
                _insert(workspace.pk, columns, as_of, None, ())
                refreshed = ProfileFeatures.objects.filter(workspace=workspace).count()
                feature_set.version += 1
            else:
                assert feature_set.as_of is not None  # rebuilt otherwise
                scope, scope_params = _changed_since(workspace.pk, feature_set.as_of, as_of)
                # Materialised once: the UNION is read by the DELETE, the INSERT and the count.
                cursor.execute(
                    f"DELETE FROM {table} WHERE workspace_id = %s AND profile_id IN ({scope})",
                    [workspace.pk, *scope_params],
                )
                _insert(workspace.pk, columns, as_of, scope, scope_params)
                cursor.execute(f"SELECT COUNT(*) FROM ({scope}) c", scope_params)
                refreshed = cursor.fetchone()[0]
        feature_set.definition = [c.as_json() for c in columns]
        feature_set.definition_hash = digest
        feature_set.as_of = as_of
        feature_set.full = rebuild
        feature_set.refreshed = refreshed
        feature_set.profiles = ProfileFeatures.objects.filter(workspace=workspace).count()
        feature_set.duration_ms = int((time.monotonic() - started) * 1000)
        feature_set.save()
    return feature_set


def feature_columns(feature_set: FeatureSet) -> list[Column]:
    return [Column.from_json(c) for c in feature_set.definition]


# --- reading matrices ----------------------------------------------------------------------------


@dataclass
class Matrix:
    ids: np.ndarray  # int64 profile ids, ascending
    X: np.ndarray  # float32, one row per id, one column per feature
    columns: list[Column]
    as_of: datetime

    def select(self, names: Iterable[str]) -> "Matrix":
        wanted = set(names)
        keep = [i for i, c in enumerate(self.columns) if c.name in wanted]
        return Matrix(self.ids, self.X[:, keep], [self.columns[i] for i in keep], self.as_of)


def _relative(X: np.ndarray, columns: Sequence[Column], as_of: datetime) -> None:
    """ "since" columns: days since 1970 -> days before as_of (NaN stays NaN: never happened)."""
    today = as_of.timestamp() / 86400.0
    for i, col in enumerate(columns):
        if col.kind == "since":
            X[:, i] = today - X[:, i]


def _parse_copy(chunks: Iterable[bytes], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `id \\t v1,v2,...` (or tab-separated values, \\N for NULL) streamed by COPY into
    arrays, a chunk at a time: never a Python object per value."""
    blocks: list[np.ndarray] = []
    rest = b""
    for chunk in chunks:
        data = rest + bytes(chunk)
        cut = data.rfind(b"\n")
        if cut < 0:
            rest = data
            continue
        rest = data[cut + 1 :]
        body = data[: cut + 1].replace(b"\\N", b"nan").replace(b"\t", b",").replace(b"\n", b",")
        flat = np.fromstring(body.decode("ascii"), dtype=np.float64, sep=",")
        blocks.append(flat.reshape(-1, width + 1))
    if rest.strip():
        raise ValueError("COPY ended in the middle of a row")
    if not blocks:
        return np.empty(0, dtype=np.int64), np.empty((0, width), dtype=np.float32)
    ids = np.concatenate([b[:, 0] for b in blocks]).astype(np.int64)
    X = np.concatenate([b[:, 1:].astype(np.float32) for b in blocks])
    return ids, X


def feature_matrix(*, workspace: Workspace) -> Matrix:
    """The stored features of every profile of the workspace (refresh them first)."""
    feature_set = FeatureSet.objects.filter(workspace=workspace).first()
    if feature_set is None or feature_set.as_of is None:
        raise LookupError("The workspace's features have not been computed yet.")
    columns = feature_columns(feature_set)
    width = len(columns)
    table = ProfileFeatures._meta.db_table
    if connection.vendor == "postgresql":
        query = (
            f"COPY (SELECT profile_id, array_to_string(\"values\", ',', 'NaN') FROM {table} "
            f"WHERE workspace_id = {int(workspace.pk)} ORDER BY profile_id) TO STDOUT"
        )
        ids, X = _copy_out(query, [], width)
    else:
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT profile_id, "values" FROM {table} WHERE workspace_id = %s ORDER BY profile_id', [workspace.pk]
            )
            rows = cursor.fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        X = np.array(
            [[math.nan if v is None else v for v in json.loads(r[1])] for r in rows], dtype=np.float32
        ).reshape(len(rows), width)
    _relative(X, columns, feature_set.as_of)
    return Matrix(ids, X, columns, feature_set.as_of)


def _copy_out(query: str, params: Sequence[Any], width: int) -> tuple[np.ndarray, np.ndarray]:
    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cursor:
        with cursor.copy(query, params or None) as copy:
            return _parse_copy(copy, width)


def feature_matrix_as_of(*, workspace: Workspace, columns: Sequence[Column], as_of: datetime) -> Matrix:
    """Features computed as of a past moment, straight from the source tables (nothing after it
    is read): the training matrix of a model that predicts what came next."""
    sql, params = features_select(workspace_id=workspace.pk, columns=columns, as_of=as_of)
    width = len(columns)
    if connection.vendor == "postgresql":
        ids, X = _copy_out(f"COPY ({sql} ORDER BY p.id) TO STDOUT", params, width)
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"{sql} ORDER BY p.id", params)
            rows = cursor.fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        X = np.array([[math.nan if v is None else v for v in r[1:]] for r in rows], dtype=np.float32).reshape(
            len(rows), width
        )
    _relative(X, columns, as_of)
    return Matrix(ids, X, list(columns), as_of)


def facet_of_criteria(definition: Any, *, definitions: dict[int, Any], facets_by_key: dict[str, tuple]) -> set:
    """The feature sources a segment definition reads (through the segments it uses too)."""
    used: set = set()
    seen: set[int] = set()

    def walk(node: Any) -> None:
        if not isinstance(node, dict):
            return
        for key in ("all", "any"):
            if isinstance(node.get(key), list):
                for child in node[key]:
                    walk(child)
        if "not" in node:
            walk(node["not"])
        if "field" in node and isinstance(node["field"], str):
            name = node["field"]
            used.add(("attribute", name.split(".", 1)[1]) if name.startswith("attributes.") else ("field", name))
            if name in ("region", "city", "postal_code", "country"):
                used.add(("geo",))
        if "geo" in node:
            used.add(("geo",))
        if "survey" in node:
            used.add(("survey", node.get("survey"), node.get("question")))
        if "event" in node:
            used.add(("event", node.get("event")))
            if "channel" in node:
                used.add(("channel", node["channel"]))
        if "orders" in node:
            used.add(("orders",))
        if "consent" in node and isinstance(node["consent"], dict):
            used.add(("consent", node["consent"].get("purpose"), node["consent"].get("channel")))
        if "segment" in node and node["segment"] not in seen:
            seen.add(node["segment"])
            walk(definitions.get(node["segment"]))
        for key, sources in facets_by_key.items():
            if key in node:
                used.update(sources)

    walk(definition)
    return used


def defining_columns(columns: Sequence[Column], used: set) -> list[tuple[Column, str]]:
    """The columns a segment's rules read, with why: a model of membership must not see them."""
    out = []
    for col in columns:
        src = col.source
        reason = None
        if src in used:
            reason = "the segment's rules read it"
        elif src[0] == "field" and src[1] in ("region", "city") and ("geo",) in used:
            reason = "the segment's rules are geographic"
        elif src[0] == "survey" and ("survey", src[1], src[2]) in used:
            reason = "the segment's rules read this question"
        elif src[0] == "orders" and ("event", "purchase") in used:
            reason = "the segment's rules read purchases"
        elif src[0] == "event" and src[1] == "purchase" and ("orders",) in used:
            reason = "the segment's rules read orders"
        if reason:
            out.append((col, reason))
    return out
