"""Profile features: one row per profile, every facet, computed set-based as of a moment.

The definition (`feature_definition`) lists the columns, derived from the workspace's data:
the regions, interests, survey questions and product categories it has. The values are one
SELECT over profiles joined to one GROUP BY per source table (events, orders and their line
items, survey answers, consent, the current CLV run's scores), written with one INSERT ... SELECT into
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
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import Workspace
from core.personal_data import AGGREGATE_FLOOR
from core.sql import json_element_text, json_elements, json_member, temporary_rows
from core.statistics import rows_written
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
from insights.models import ClvRun, ClvScore, FeatureSet, ProfileFeatures
from privacy.models import ConsentPurpose, ConsentRecord, ConsentStatus
from segments.criteria import Criterion
from segments.rules import ANY_EVENT, definition_leaves

WINDOWS = (30, 90, 365)
CHANNEL_WINDOW = 90
TOP_REGIONS = 25
TOP_VALUES = 20
TOP_CATEGORIES = 15
TOP_QUESTIONS = 30
TOP_ANSWERS = 8
# A survey answer or attribute value becomes a feature only when this many people share it:
# free text a single person wrote is never a column (nor a centroid, nor a persona's name).
MIN_SHARED = AGGREGATE_FLOOR
CONSENT_PAIRS = (
    ("direct_marketing", "email"),
    ("direct_marketing", "sms"),
    ("direct_marketing", "push"),
    ("ad_targeting", "display"),
    ("ad_targeting", "social"),
)


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
        return {**asdict(self), "source": list(self.source)}

    @classmethod
    def from_json(cls, data: dict) -> "Column":
        return cls(**{**data, "source": tuple(data["source"])})


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
    """(survey, question, "number" | "choice", closed answers) of the most answered questions: two
    GROUP BYs over the answers, one for the kinds of answer per question, one for the texts that
    MIN_SHARED people or more gave."""
    answer = _answer_sql()
    table = SurveyResponse._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT survey, question, COUNT(*), SUM(CASE WHEN {answer['kind']} = 'number' THEN 1 ELSE 0 END) "
            f"FROM {table} WHERE workspace_id = %s GROUP BY survey, question HAVING COUNT(*) >= %s "
            "ORDER BY 3 DESC, 1, 2 LIMIT %s",
            [workspace_id, MIN_SHARED, TOP_QUESTIONS],
        )
        questions = cursor.fetchall()
        cursor.execute(
            f"SELECT survey, question, {answer['text']} AS t, COUNT(*) FROM {table} "
            f"WHERE workspace_id = %s AND {answer['kind']} = 'text' GROUP BY survey, question, t "
            "HAVING COUNT(*) >= %s ORDER BY 4 DESC, 3",
            [workspace_id, MIN_SHARED],
        )
        texts: dict[tuple[str, str], list[str]] = {}
        for survey, question, text, _ in cursor.fetchall():
            texts.setdefault((survey, question), []).append(text)
    found: list[tuple[str, str, str, list[str]]] = []
    for survey, question, total, numbers in questions:
        if numbers * 2 > total:
            found.append((survey, question, "number", []))
        elif texts.get((survey, question)):
            found.append((survey, question, "choice", texts[(survey, question)][:TOP_ANSWERS]))
    return found


def _answer_sql() -> dict[str, str]:
    """SQL for a survey answer's kind ("number" / "text" / "other"), text and number."""
    if connection.vendor == "postgresql":
        return {
            "kind": "CASE jsonb_typeof(answer) WHEN 'number' THEN 'number' WHEN 'string' THEN 'text' "
            "WHEN 'boolean' THEN 'text' ELSE 'other' END",
            "text": "CASE WHEN jsonb_typeof(answer) IN ('string', 'boolean') THEN answer #>> '{}' END",
            "number": "CASE WHEN jsonb_typeof(answer) = 'number' THEN (answer #>> '{}')::float8 END",
        }
    return {
        "kind": "CASE json_type(answer) WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' "
        "WHEN 'text' THEN 'text' WHEN 'true' THEN 'text' WHEN 'false' THEN 'text' ELSE 'other' END",
        "text": "CASE json_type(answer) WHEN 'text' THEN json_extract(answer, '$') WHEN 'true' THEN 'true' "
        "WHEN 'false' THEN 'false' END",
        "number": "CASE WHEN json_type(answer) IN ('integer', 'real') THEN json_extract(answer, '$') END",
    }


def _list_items(workspace_id: int, key: str) -> list[str]:
    """The most frequent items of a list attribute (interests), shared by MIN_SHARED people or more.
    `key` is an attribute key (lower-case letters, digits and underscores: AttributeDefinition)."""
    item = json_element_text("j.value")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {item}, COUNT(*) FROM customers_profile p {json_elements('p.attributes', 'j', key)} "
            f"WHERE p.workspace_id = %s GROUP BY {item} HAVING COUNT(*) >= %s ORDER BY 2 DESC, 1 LIMIT %s",
            [workspace_id, MIN_SHARED, TOP_VALUES],
        )
        return [str(value) for value, _ in cursor.fetchall()]


def _categories(workspace_id: int) -> list[str]:
    category = json_member("it.value", "category")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {category}, COUNT(*) FROM customers_order o {json_elements('o.items', 'it')} "
            f"WHERE o.workspace_id = %s AND o.status = 'completed' AND {category} IS NOT NULL "
            f"GROUP BY {category} HAVING COUNT(*) >= %s ORDER BY 2 DESC, 1 LIMIT %s",
            [workspace_id, MIN_SHARED, TOP_CATEGORIES],
        )
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
            values = _top(profiles, f"attributes__{key}", TOP_VALUES, MIN_SHARED)
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
    clv = ClvRun.current(workspace_id=ws)
    if clv is not None:
        # The current CLV run's scores; the run is part of the definition, so a new run rebuilds.
        for measure, label in CLV_COLUMNS:
            cols.append(Column(f"clv_{measure}", "transactional", label, "number", ("clv", measure), clv.pk))
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


CLV_COLUMNS = (
    ("p_alive", "Probability of still being a customer (CLV)"),
    ("purchases", "Expected purchases (CLV)"),
    ("value_12m", "Expected value of the next 12 months (CLV)"),
    ("clv", "Lifetime value (CLV)"),
)


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


def _agg_if(function: str, value: str, condition: str) -> str:
    """An aggregate of the rows where `condition` holds: PostgreSQL's FILTER clause (no CASE to
    evaluate and no zero to add for the other rows), a CASE on SQLite. NULL when no row holds,
    except for COUNT."""
    if connection.vendor == "postgresql":
        return f"{function}({value}) FILTER (WHERE {condition})"
    return f"{function}(CASE WHEN {condition} THEN {'1' if value == '*' else value} END)"


# The per-profile GROUP BYs a feature reads, by alias: (FROM, the condition of the rows as of a moment).
_SOURCES = {
    "e": ("customers_event t", "t.occurred_at <= %s"),
    "o": ("customers_order t", "t.status = 'completed' AND t.ordered_at <= %s"),
    "l": ("customers_order t {lines}", "t.status = 'completed' AND t.ordered_at <= %s"),
    "s": ("customers_surveyresponse t", "t.answered_at <= %s"),
}


def features_select(
    *,
    workspace_id: int,
    columns: Sequence[Column],
    as_of: datetime,
    scope: str | None = None,
) -> tuple[str, list[Any]]:
    """SELECT p.id, <one value per column> for the workspace's profiles as of `as_of` (rows
    after it do not exist yet); `scope` (a table of profile ids) limits it to some profiles."""
    at = _param(as_of)
    answer = _answer_sql()
    exprs: list[tuple[str, list]] = []  # per column: (expression, params)
    clv_run = None
    aggregates: dict[str, list[tuple[str, list]]] = {alias: [] for alias in _SOURCES}
    pairs: list[tuple[str, str]] = []

    def agg(alias: str, sql: str, params: list) -> str:
        name = f"{alias}{len(aggregates[alias])}"
        aggregates[alias].append((f"{sql} AS {name}", params))
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
            e = _attribute_expr(col)
        elif src[0] == "survey":
            cond = "t.survey = %s AND t.question = %s"
            if col.value is None:
                e = (agg("s", _agg_if("AVG", answer["number"], cond), [src[1], src[2]]), [])
            else:
                ref = agg("s", _agg_if("MAX", "1", f"{cond} AND {answer['text']} = %s"), [*src[1:], col.value])
                e = (f"COALESCE({ref}, 0)", [])
        elif src[0] == "event" and col.kind == "since":
            e = (agg("e", _agg_if("MAX", _days("t.occurred_at"), "t.type = %s"), [src[1]]), [])
        elif src[0] in ("event", "channel"):
            since = _param(as_of - timedelta(days=col.value))
            field = "type" if src[0] == "event" else "channel"
            e = (
                f"COALESCE({agg('e', _agg_if('COUNT', '*', f't.{field} = %s AND t.occurred_at >= %s'), [src[1], since])}, 0)",
                [],
            )
        elif src[0] == "orders":
            e = _order_expr(col, as_of, agg)
        elif src[0] == "consent":
            pairs.append((src[1], src[2]))
            e = (f"COALESCE(g.g{len(pairs) - 1}, 0)", [])
        elif src[0] == "clv":
            clv_run = col.value
            # Someone who never bought is expected to buy nothing; their p_alive is unknown.
            e = (f"v.{src[1]}" if src[1] == "p_alive" else f"COALESCE(v.{src[1]}, 0)", [])
        else:
            raise ValueError(f"Unknown feature source {src!r}")
        exprs.append(e)

    scoped = f" AND t.profile_id IN (SELECT id FROM {scope})" if scope else ""
    joins: list[tuple[str, list]] = []
    for alias, (source, condition) in _SOURCES.items():
        if aggregates[alias]:
            source = source.format(lines=json_elements("t.items", "it"))
            select = ", ".join(sql for sql, _ in aggregates[alias])
            joins.append(
                (
                    f"LEFT JOIN (SELECT t.profile_id, {select} FROM {source} WHERE t.workspace_id = %s AND "
                    f"{condition}{scoped} GROUP BY t.profile_id) {alias} ON {alias}.profile_id = p.id",
                    [*(x for _, ps in aggregates[alias] for x in ps), workspace_id, at],
                )
            )
    if pairs:
        # Consent in force at as_of for every pair, in one pass over the consent history.
        wanted = Q(pk__in=[])
        for purpose, channel in pairs:
            wanted |= Q(purpose=purpose, channel=channel)
        grants = ConsentRecord.objects.filter(workspace_id=workspace_id).filter(wanted).grants_in_force(as_of)
        grants_sql, grants_params = grants.values("profile_id", "purpose", "channel").query.sql_with_params()
        flags = ", ".join(
            f"{_agg_if('MAX', '1', 't.purpose = %s AND t.channel = %s')} AS g{i}" for i in range(len(pairs))
        )
        joins.append(
            (
                f"LEFT JOIN (SELECT t.profile_id, {flags} FROM ({grants_sql}) t GROUP BY t.profile_id) g "
                "ON g.profile_id = p.id",
                [*(x for pair in pairs for x in pair), *grants_params],
            )
        )
    if clv_run is not None:
        joins.append(
            (
                f"LEFT JOIN {ClvScore._meta.db_table} v ON v.workspace_id = %s AND v.run_id = %s AND v.profile_id = p.id",
                [workspace_id, clv_run],
            )
        )
    if any(c.source == ("field", "city") for c in columns):
        joins.append(
            (
                "LEFT JOIN (SELECT lower(city) AS city, COUNT(*) AS n FROM customers_profile WHERE workspace_id = %s "
                "AND city <> '' GROUP BY lower(city)) d ON d.city = lower(p.city) AND p.city <> ''",
                [workspace_id],
            )
        )
    refused = (
        ConsentRecord.objects.filter(workspace_id=workspace_id, purpose=ConsentPurpose.PROFILING)
        .valid_at(as_of)
        .exclude(status=ConsentStatus.GRANTED)
    )
    refused_sql, refused_params = refused.values("profile_id").query.sql_with_params()
    select = ", ".join(f"{e} AS c{i}" for i, (e, _) in enumerate(exprs))
    sql = (
        f"SELECT p.id, {select} FROM customers_profile p "
        + " ".join(join for join, _ in joins)
        + " WHERE p.workspace_id = %s AND p.erased_at IS NULL"
        + f" AND NOT EXISTS (SELECT 1 FROM ({refused_sql}) _r WHERE _r.profile_id = p.id)"
        + (f" AND p.id IN (SELECT id FROM {scope})" if scope else "")
    )
    params = [*(x for _, ps in exprs for x in ps), *(x for _, ps in joins for x in ps), workspace_id, *refused_params]
    return sql, params


def _days_date(expr: str) -> str:
    if connection.vendor == "postgresql":
        return f"({expr} - DATE '1970-01-01')"
    return f"(julianday({expr}) - 2440587.5)"


def _attribute_expr(col: Column) -> tuple[str, list]:
    pg = connection.vendor == "postgresql"
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


def _order_expr(col: Column, as_of: datetime, agg: Callable[[str, str, list], str]) -> tuple[str, list]:
    amount = "CAST(t.amount AS REAL)" if connection.vendor == "sqlite" else "t.amount::float8"
    if col.name.startswith("cat_"):
        category = json_member("it.value", "category")
        return (f"COALESCE({agg('l', _agg_if('MAX', '1', f'{category} = %s'), [col.value])}, 0)", [])
    since = [_param(as_of - timedelta(days=365))]
    aggregates: dict[str, tuple[str, list]] = {
        "orders_all": ("COUNT(*)", []),
        "orders_365d": (_agg_if("COUNT", "*", "t.ordered_at >= %s"), since),
        "amount_all": (f"SUM({amount})", []),
        "amount_365d": (_agg_if("SUM", amount, "t.ordered_at >= %s"), since),
        "basket_avg": (f"AVG({amount})", []),
        "order_last": (f"MAX({_days('t.ordered_at')})", []),
        "order_first": (f"MIN({_days('t.ordered_at')})", []),
    }
    sql, params = aggregates[col.name]
    ref = agg("o", sql, params)
    # No order: none counted, nothing spent; an average or a date that does not exist stays missing.
    return (
        f"COALESCE({ref}, 0)" if col.name in ("orders_all", "orders_365d", "amount_all", "amount_365d") else ref,
        [],
    )


# --- the stored table --------------------------------------------------------------------------


def _insert(workspace_id: int, columns: Sequence[Column], as_of: datetime, scope: str | None = None) -> None:
    sql, params = features_select(workspace_id=workspace_id, columns=columns, as_of=as_of, scope=scope)
    n = len(columns)
    if connection.vendor == "postgresql":
        # Missing values are stored as NaN, never NULL: every row then has the same binary size,
        # which is what lets feature_matrix read the table as one fixed-size record per profile.
        vector = "ARRAY[" + ", ".join(f"COALESCE(f.c{i}, 'NaN'::float8)" for i in range(n)) + "]::real[]"
    else:
        vector = "'[' || " + " || ',' || ".join(f"COALESCE(CAST(f.c{i} AS TEXT), 'null')" for i in range(n)) + " || ']'"
    table = ProfileFeatures._meta.db_table
    if connection.vendor != "postgresql" or scope is not None:
        with connection.cursor() as cursor:
            cursor.execute(
                f'INSERT INTO {table} (workspace_id, profile_id, "values") SELECT %s, f.id, {vector} FROM ({sql}) f',
                [workspace_id, *params],
            )
        return
    # A full rebuild: PostgreSQL plans no parallel workers for the SELECT of an INSERT, but does for
    # CREATE TABLE AS, so the aggregates over the events and orders are computed there first.
    with temporary_rows(sql, params) as computed, connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO {table} (workspace_id, profile_id, "values") SELECT %s, f.id, {vector} FROM {computed} f',
            [workspace_id],
        )


def _changed_since(workspace_id: int, since: datetime, as_of: datetime) -> tuple[str, list]:
    """SQL of the profile ids (`id`) whose features may differ between `since` and `as_of`: rows
    written since (profiles, events, orders, answers, consent), rows dated in between (written
    ahead of their time), and events or orders that left a window meanwhile."""
    s, a = _param(since), _param(as_of)
    parts: list[tuple[str, str, list]] = [
        ("customers_profile", "updated_at > %s", [s]),
        ("customers_event", "received_at > %s", [s]),
        ("customers_order", "updated_at > %s", [s]),
        ("customers_surveyresponse", "created_at > %s", [s]),
        ("privacy_consentrecord", "created_at > %s", [s]),
        ("customers_event", "occurred_at > %s AND occurred_at <= %s", [s, a]),
        ("customers_order", "ordered_at > %s AND ordered_at <= %s", [s, a]),
    ]
    for table, column, days in [
        *(("customers_event", "occurred_at", d) for d in (*WINDOWS, CHANNEL_WINDOW)),
        ("customers_order", "ordered_at", 365),
    ]:
        window = timedelta(days=days)
        parts.append((table, f"{column} >= %s AND {column} < %s", [_param(since - window), _param(as_of - window)]))
    sql = " UNION ".join(
        f"SELECT {'id' if table == 'customers_profile' else 'profile_id'} AS id FROM {table} "
        f"WHERE workspace_id = %s AND {condition}"
        for table, condition, _ in parts
    )
    return sql, [x for _, _, ps in parts for x in (workspace_id, *ps)]


def features_refresh(
    *, workspace: Workspace, as_of: datetime | None = None, full: bool = False, progress=None
) -> FeatureSet:
    """Bring the workspace's feature table to `as_of` (now): rebuilt when the definition changed
    (or `full`), else only the profiles whose features may have changed."""
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
        if rebuild:
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [workspace.pk])
            _insert(workspace.pk, columns, as_of)
            refreshed = ProfileFeatures.objects.filter(workspace=workspace).count()
            feature_set.version += 1
        else:
            assert feature_set.as_of is not None  # rebuilt otherwise
            # The changed profiles, found once and read by the DELETE, the INSERT and the count.
            with temporary_rows(*_changed_since(workspace.pk, feature_set.as_of, as_of)) as scope:
                with connection.cursor() as cursor:
                    cursor.execute(
                        f"DELETE FROM {table} WHERE workspace_id = %s AND profile_id IN (SELECT id FROM {scope})",
                        [workspace.pk],
                    )
                    _insert(workspace.pk, columns, as_of, scope)
                    cursor.execute(f"SELECT COUNT(*) FROM {scope}")
                    refreshed = cursor.fetchone()[0]
        feature_set.definition = [c.as_json() for c in columns]
        feature_set.definition_hash = digest
        feature_set.as_of = as_of
        feature_set.full = rebuild
        feature_set.refreshed = refreshed
        feature_set.profiles = ProfileFeatures.objects.filter(workspace=workspace).count()
        feature_set.duration_ms = int((time.monotonic() - started) * 1000)
        feature_set.save()
    rows_written(model=ProfileFeatures, rows=refreshed, wait=True)
    return feature_set


def features_current(*, workspace: Workspace, max_age: timedelta | None = None, progress=None) -> FeatureSet:
    """The workspace's features, refreshed first when never computed or older than `max_age`."""
    feature_set = FeatureSet.objects.filter(workspace=workspace).first()
    stale = (
        max_age is not None
        and feature_set is not None
        and feature_set.as_of is not None
        and (feature_set.as_of < timezone.now() - max_age)
    )
    if feature_set is None or feature_set.as_of is None or stale:
        if progress:
            progress(10, "Refreshing the profile features")
        feature_set = features_refresh(workspace=workspace)
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
            f'COPY (SELECT profile_id, "values" FROM {table} WHERE workspace_id = {int(workspace.pk)} '
            "ORDER BY profile_id) TO STDOUT WITH (FORMAT binary)"
        )
        ids, X = _binary_copy_out(query, width)
    else:
        ids, X = _fetch(
            f'SELECT profile_id, "values" FROM {table} WHERE workspace_id = %s ORDER BY profile_id',
            [workspace.pk],
            width,
            lambda row: json.loads(row[1]),
        )
    _relative(X, columns, feature_set.as_of)
    return Matrix(ids, X, columns, feature_set.as_of)


def _fetch(
    sql: str, params: Sequence[Any], width: int, values: Callable[[tuple], Sequence[Any]]
) -> tuple[np.ndarray, np.ndarray]:
    """SQLite (the embedded default, small bases): rows of (id, ...) into arrays, missing as NaN."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    ids = np.array([row[0] for row in rows], dtype=np.int64)
    X = np.array([[math.nan if v is None else v for v in values(row)] for row in rows], dtype=np.float32)
    return ids, X.reshape(len(rows), width)


def _record_type(width: int) -> np.dtype:
    """One row of `COPY (SELECT profile_id, "values") TO STDOUT WITH (FORMAT binary)` when the array
    holds `width` floats and no NULL: every field at a fixed offset, big-endian as on the wire."""
    return np.dtype(
        [
            ("fields", ">i2"),
            ("id_length", ">i4"),
            ("id", ">i8"),
            ("array_length", ">i4"),
            ("dimensions", ">i4"),
            ("has_nulls", ">i4"),
            ("element_type", ">u4"),
            ("size", ">i4"),
            ("lower_bound", ">i4"),
            ("values", [("length", ">i4"), ("value", ">f4")], (width,)),
        ]
    )


def _binary_copy_out(query: str, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The stored features by binary COPY, parsed a chunk of whole records at a time with numpy:
    no text to format and parse, no Python object per value (36 s to 4 s for 830,000 x 171)."""
    record = _record_type(width)
    header = 19  # signature (11 bytes), flags and header extension length
    ids: list[np.ndarray] = []
    blocks: list[np.ndarray] = []
    pending = b""
    connection.ensure_connection()
    with connection.connection.cursor() as cursor, cursor.copy(query) as copy:
        for chunk in copy:
            pending += bytes(chunk)
            if header:
                if len(pending) < header:
                    continue
                pending, header = pending[header:], 0
            whole = len(pending) // record.itemsize * record.itemsize
            if whole:
                rows = np.frombuffer(pending[:whole], dtype=record)
                if (rows["fields"] != 2).any() or (rows["has_nulls"] != 0).any() or (rows["size"] != width).any():
                    raise ValueError("Stored features do not match their definition: refresh them in full.")
                ids.append(rows["id"].astype(np.int64))
                blocks.append(rows["values"]["value"].astype(np.float32))
                pending = pending[whole:]
    if pending not in (b"", b"\xff\xff"):  # what is left is the trailer
        raise ValueError("COPY ended in the middle of a row")
    if not ids:
        return np.empty(0, dtype=np.int64), np.empty((0, width), dtype=np.float32)
    return np.concatenate(ids), np.concatenate(blocks)


def _copy_out(query: str, params: Sequence[Any], width: int) -> tuple[np.ndarray, np.ndarray]:
    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cursor:
        with cursor.copy(query, params or None) as copy:
            return _parse_copy(copy, width)


def feature_matrix_as_of(*, workspace: Workspace, columns: Sequence[Column], as_of: datetime) -> Matrix:
    """Features computed as of a past moment, straight from the source tables (nothing after it
    is read, except the lifecycle stage and the current CLV run's scores, which are today's: a
    model of what came next leaves them out): the training matrix of a model that predicts what
    came next."""
    sql, params = features_select(workspace_id=workspace.pk, columns=columns, as_of=as_of)
    width = len(columns)
    if connection.vendor == "postgresql":
        ids, X = _copy_out(f"COPY ({sql} ORDER BY p.id) TO STDOUT", params, width)
    else:
        ids, X = _fetch(f"{sql} ORDER BY p.id", params, width, lambda row: row[1:])
    _relative(X, columns, as_of)
    return Matrix(ids, X, list(columns), as_of)


def facet_of_criteria(definition: Any, *, definitions: dict[int, Any], families: dict[str, Criterion]) -> set:
    """The feature sources a segment definition reads (through the segments it uses too)."""
    used: set = set()
    for node in definition_leaves(definition, definitions=definitions):
        if isinstance(node.get("field"), str):
            name = node["field"]
            used.add(("attribute", name.split(".", 1)[1]) if name.startswith("attributes.") else ("field", name))
            if name in ("region", "city", "postal_code", "country"):
                used.add(("geo",))
        if "geo" in node:
            used.add(("geo",))
        if "survey" in node:
            used.add(("survey", node.get("survey"), node.get("question")))
        if "event" in node:
            any_type = node.get("event") == ANY_EVENT
            used.update(("event", kind) for kind in (EventType.values if any_type else [node.get("event")]))
            if "channel" in node:
                used.add(("channel", node["channel"]))
        if "orders" in node:
            used.add(("orders",))
        if isinstance(node.get("consent"), dict):
            used.add(("consent", node["consent"].get("purpose"), node["consent"].get("channel")))
        for key, family in families.items():
            if key in node:
                used.update(family.facets)
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
        elif src[0] == "orders" and ("event", "purchase") in used:
            reason = "the segment's rules read purchases"
        elif src[0] == "event" and src[1] == "purchase" and ("orders",) in used:
            reason = "the segment's rules read orders"
        elif src[0] == "clv" and (("orders",) in used or ("event", "purchase") in used):
            reason = "lifetime value is computed from the orders the segment's rules read"
        if reason:
            out.append((col, reason))
    return out
