"""The segment rule language: compilation to one SQL query over profiles.

`compile_definition` turns a validated definition into a Q object on Profile.
Conditions on the profile's own columns stay predicates on its row; event, order, survey,
consent and segment conditions become sets of profile ids (`SELECT profile_id ... GROUP BY
profile_id HAVING ...`) tested with `core.sql.InRows`, an EXISTS over the set as a derived
table. Why that form, measured on 100k-1M profiles under PostgreSQL's default work_mem (4 MB):

* `id IN (subquery)` is a semi-join only at the top level of the WHERE. Under OR or NOT it
  stays a SubPlan that is hashed only while the whole result fits in work_mem; past that it is
  re-read for every profile (estimated 1.6e9 for "viewed a page in 365 days" at 200k profiles,
  a query that never finished). EXISTS over the derived table is a semi-join at the top level,
  an anti-join when negated there, and under OR a probe of the rows' (profile, ...) index per
  profile: linear in both cases, whatever work_mem is.
* The tree is first put in negation normal form (NOT pushed down to the leaves by De Morgan),
  so `not` over `any` becomes top-level anti-joins instead of a NOT over an OR.
* A count that holds at zero ("at most one order", "no cart abandoned") is the complement of
  the people whose rows break it: one `NOT EXISTS (... HAVING NOT <comparison>)`, an anti-join,
  instead of `IN (...) OR NOT IN (...)`.
* Geographic distance is a predicate on the profile's row (a bounding box, then haversine).

Set-based throughout, never a Python loop over profiles. A reference to another segment reads
the current version of its audience.
"""

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    BigIntegerField,
    Count,
    DecimalField,
    F,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    TextField,
    Value,
)
from django.db.models.expressions import Combinable, RawSQL
from django.db.models.fields.json import KT
from django.db.models.functions import ASin, Cast, Cos, Power, Radians, Round, Sin, Sqrt
from django.db.models.lookups import Exact, GreaterThan, GreaterThanOrEqual, In, LessThan, LessThanOrEqual

from core.folding import Folded, fold
from core.sql import InRows, json_elements, json_member
from core.time import moment_parse, years_ago
from customers.models import Event, Order, Profile, SurveyResponse
from privacy.models import ConsentRecord
from segments.criteria import criteria
from segments.rules import ANY_EVENT, parse_window

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class CompileContext:
    workspace_id: int
    now: datetime
    attribute_types: Mapping[str, str]
    # segment id -> profile ids of its current audience; a segment never computed has no members.
    segment_members: Mapping[int, QuerySet]
    # Dates without a time of day are days of the workspace's calendar.
    time_zone: str = "UTC"


def _window(value: Any) -> timedelta:
    """The duration of a validated window (`P30D`...)."""
    window = parse_window(value)
    if window is None:
        raise ValueError(f"Not a validated window: {value!r}")
    return window


def compile_definition(definition: dict, ctx: CompileContext) -> Q:
    return _compile(definition, ctx)


def segment_queryset(definition: dict, ctx: CompileContext) -> QuerySet[Profile]:
    return Profile.objects.filter(workspace_id=ctx.workspace_id).filter(compile_definition(definition, ctx))


def _compile(node: dict, ctx: CompileContext, negated: bool = False) -> Q:
    """The node's condition, negated when `negated`: NOT goes down to the leaves (De Morgan), so
    negations of sets sit at the top of the WHERE where PostgreSQL makes them anti-joins. Each
    leaf's condition is two-valued or Kleene-consistent, so the laws hold under SQL's NULLs."""
    if "all" in node or "any" in node:
        conjunction = ("all" in node) != negated
        q = Q() if conjunction else Q(pk__in=[])  # neutral elements of AND and OR
        for child in node["all" if "all" in node else "any"]:
            part = _compile(child, ctx, negated)
            q = (q & part) if conjunction else (q | part)
        return q
    if "not" in node:
        return _compile(node["not"], ctx, not negated)
    for key, compiler in _LEAVES.items():
        if key in node:
            q = compiler(node, ctx)
            return ~q if negated else q
    for key, family in criteria().items():
        if key in node:
            q = _in(family.compile(node[key], ctx))
            return ~q if negated else q
    raise ValueError(f"Not a validated definition: {node!r}")


def _in(rows: QuerySet | RawSQL) -> Q:
    """Profiles whose id is in `rows` (one column of profile ids), as a join (see the module docstring)."""
    return Q(InRows(rows))


# --- profile fields ------------------------------------------------------------------


def _field(node: dict, ctx: CompileContext) -> Q:
    name, op, value = node["field"], node["op"], node["value"]
    if name == "age":
        return _age(op, value, ctx)
    if name.startswith("attributes."):
        return _attribute(name[len("attributes.") :], op, value, ctx)
    if name in FOLDED_FIELDS and op in ("eq", "ne", "in", "not_in"):
        return _folded(name, op, value)
    return _compare(name, op, value)


# Place names compare folded: "Île-de-France" finds "Ile-de-France" and "ILE DE FRANCE" (core.folding;
# PostgreSQL serves it with an expression index per field).
FOLDED_FIELDS = ("city", "region", "country")


def _folded(column: str, op: str, value: Any) -> Q:
    folded = Folded(F(column))
    if op in ("eq", "ne"):
        q = Q(Exact(folded, fold(value)))
        return q if op == "eq" else ~q
    q = Q(In(folded, sorted({fold(item) for item in value})))
    return q if op == "in" else ~q


def _compare(column: str, op: str, value: Any) -> Q:
    if op == "is_set":
        present = ~Q(**{column: ""}) & Q(**{f"{column}__isnull": False})
        return present if value else ~present
    if op == "eq":
        return Q(**{column: value})
    if op == "ne":
        return ~Q(**{column: value})
    if op in ("in", "not_in"):
        q = Q(**{f"{column}__in": value})
        return q if op == "in" else ~q
    if op == "starts_with":
        prefixes = value if isinstance(value, list) else [value]
        q = Q(pk__in=[])
        for prefix in prefixes:
            q |= Q(**{f"{column}__startswith": prefix})
        return q
    if op == "between":
        return Q(**{f"{column}__gte": value[0], f"{column}__lte": value[1]})
    if op in ("gt", "gte", "lt", "lte"):
        return Q(**{f"{column}__{op}": value})
    if op == "before":
        return Q(**{f"{column}__lt": value})
    if op == "after":
        return Q(**{f"{column}__gt": value})
    raise ValueError(op)


def _age(op: str, value: Any, ctx: CompileContext) -> Q:
    """Age as a birth-date range, so the (workspace, birth_date) index serves it."""
    today = ctx.now.date()

    def at_least(years: float) -> Q:  # age >= years
        return Q(birth_date__lte=years_ago(today, math.ceil(years)))

    def at_most(years: float) -> Q:  # age <= years
        return Q(birth_date__gt=years_ago(today, math.floor(years) + 1))

    if op == "is_set":
        return Q(birth_date__isnull=not value)
    if op == "between":
        return at_least(value[0]) & at_most(value[1])
    if op == "gte":
        return at_least(value)
    if op == "gt":
        return at_least(math.floor(value) + 1)
    if op == "lte":
        return at_most(value)
    if op == "lt":
        return at_most(math.ceil(value) - 1)
    exact = at_least(value) & at_most(value) if float(value).is_integer() else Q(pk__in=[])
    return exact if op == "eq" else (~exact & Q(birth_date__isnull=False))


def _attribute(key: str, op: str, value: Any, ctx: CompileContext) -> Q:
    kind = ctx.attribute_types[key]
    path = f"attributes__{key}"
    if op == "is_set":
        present = Q(**{f"{path}__isnull": False})
        return present if value else ~present
    if kind == "string_list":
        items = value if isinstance(value, list) else [value]
        parts = [_list_contains(key, item, ctx) for item in items]
        q = parts[0]
        for part in parts[1:]:
            q = (q & part) if op == "contains_all" else (q | part)
        return q
    if kind == "string" and op in ("eq", "ne", "in", "not_in"):
        # Texts compare folded, as place names do: "Éco" finds "eco" and "ECO".
        folded = Folded(KT(path))
        present = Q(**{f"{path}__isnull": False})
        if op in ("eq", "ne"):
            q = Q(Exact(folded, fold(value))) & present
        else:
            q = Q(In(folded, sorted({fold(item) for item in value}))) & present
        return q if op in ("eq", "in") else ~q
    # Numbers, yes/no and ISO dates (and text prefixes) compare as JSON values on both databases.
    return _compare(path, op, value)


def _list_contains(key: str, item: str, ctx: CompileContext) -> Q:
    if connection.vendor == "postgresql":
        return Q(attributes__contains={key: [item]})  # jsonb @>, served by a GIN index
    # SQLite has no JSON containment: match the quoted item in the array's JSON text.
    matching = (
        Profile.objects.filter(workspace_id=ctx.workspace_id)
        .alias(_items=KT(f"attributes__{key}"))
        .filter(_items__contains=json.dumps(item))
    )
    return _in(matching.values("pk"))


# --- survey answers ------------------------------------------------------------------


def _survey(node: dict, ctx: CompileContext) -> Q:
    answers = SurveyResponse.objects.filter(
        workspace_id=ctx.workspace_id, survey=node["survey"], question=node["question"]
    )
    op, value = node["op"], node["value"]
    if op == "answered":
        q = _in(answers.values("profile_id"))
        return q if value else ~q
    if op == "contains":
        if connection.vendor == "postgresql":
            matching = answers.filter(answer__contains=[value])
        else:
            matching = answers.alias(_text=Cast("answer", TextField())).filter(_text__contains=json.dumps(value))
    elif op == "ne":
        return _in(answers.values("profile_id")) & ~_in(answers.filter(answer=value).values("profile_id"))
    elif op == "in":
        matching = answers.filter(answer__in=value)
    else:
        matching = answers.filter(_compare("answer", op, value))
    return _in(matching.values("profile_id"))


# --- behaviour: events ---------------------------------------------------------------


def _holds(comparison: Mapping[str, float], value: float) -> bool:
    checks: dict[str, Callable[[float, float], bool]] = {
        "eq": lambda a, b: a == b,
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    return all(checks[key](value, bound) for key, bound in comparison.items())


def _having(name: str, comparison: Mapping[str, float]) -> Q:
    return Q(**{f"{name}__{'exact' if key == 'eq' else key}": bound for key, bound in comparison.items()})


def _event(node: dict, ctx: CompileContext) -> Q:
    events = Event.objects.filter(workspace_id=ctx.workspace_id, occurred_at__lte=ctx.now)
    if node["event"] != ANY_EVENT:
        events = events.filter(type=node["event"])
    if "channel" in node:
        events = events.filter(channel=node["channel"])
    for key, value in node.get("properties", {}).items():
        events = events.filter(**{f"properties__{key}": value})
    for key in ("first", "last"):
        if key in node:
            return _recency(events, "occurred_at", key, node[key], ctx)
    return _counted(_period(events, "occurred_at", node, ctx), node.get("count", {"gte": 1}))


def _counted(rows: QuerySet, comparison: Mapping[str, float]) -> Q:
    """Profiles whose number of rows satisfies the comparison, zero included when it should be."""
    if comparison == {"gte": 1} or comparison == {"gt": 0}:
        return _in(rows.values("profile_id"))
    counts = rows.values("profile_id").annotate(n=Count("*"))
    if _holds(comparison, 0):
        # "did not do X", "at most one": everyone but the people whose count breaks the comparison
        # (people with no row qualify), one anti-join.
        return ~_in(counts.filter(~_having("n", comparison)).values("profile_id"))
    return _in(counts.filter(_having("n", comparison)).values("profile_id"))


# --- time: windows back from now, absolute dates, and the "as of" moment -----------------


def _moment(value: str, ctx: CompileContext) -> tuple[datetime, bool]:
    """A validated date or date-time as (its first instant, whether it was a whole day), read as
    core.time reads every date of a workspace."""
    moment = moment_parse(value, time_zone=ctx.time_zone)
    if moment is None:
        raise ValueError(f"Not a validated date: {value!r}")
    return moment, len(value) == 10


def _absolute(column: str, mode: str, value: Any, ctx: CompileContext) -> Q:
    """`before` a day is before it starts, `after` a day is once it has ended; `between` two days
    includes both whole days. With date-times the bounds are the instants themselves."""

    def low(bound: str, *, inclusive: bool) -> Q:
        moment, whole_day = _moment(bound, ctx)
        if whole_day and not inclusive:
            return Q(**{f"{column}__gte": moment + timedelta(days=1)})
        return Q(**{f"{column}__{'gte' if inclusive else 'gt'}": moment})

    def high(bound: str, *, inclusive: bool) -> Q:
        moment, whole_day = _moment(bound, ctx)
        if whole_day:
            return Q(**{f"{column}__lt": moment + timedelta(days=1) if inclusive else moment})
        return Q(**{f"{column}__{'lte' if inclusive else 'lt'}": moment})

    if mode == "after":
        return low(value, inclusive=False)
    if mode == "before":
        return high(value, inclusive=False)
    if mode == "between":
        return low(value[0], inclusive=True) & high(value[1], inclusive=True)
    raise ValueError(mode)


def _period(rows: QuerySet, column: str, spec: Mapping[str, Any], ctx: CompileContext) -> QuerySet:
    """The rows in the condition's period: a window back from now and/or absolute bounds."""
    if "within" in spec:
        rows = rows.filter(**{f"{column}__gte": ctx.now - _window(spec["within"])})
    for mode in ("after", "before", "between"):
        if mode in spec:
            rows = rows.filter(_absolute(column, mode, spec[mode], ctx))
    return rows


def _recency(rows: QuerySet, column: str, key: str, spec: Mapping[str, Any], ctx: CompileContext) -> Q:
    """People whose first (or last) row falls in the period: within / older_than a duration
    back from now, or before / after / between dates."""
    ((mode, value),) = spec.items()
    if mode == "within":
        condition = Q(_moment__gte=ctx.now - _window(value))
    elif mode == "older_than":
        condition = Q(_moment__lt=ctx.now - _window(value))
    else:
        condition = _absolute("_moment", mode, value, ctx)
    moment = (Min if key == "first" else Max)(column)
    people = rows.values("profile_id").annotate(_moment=moment).filter(condition).values("profile_id")
    return _in(people)


# --- transactions: orders ------------------------------------------------------------


_LOOKUPS = {
    "eq": Exact,
    "gt": GreaterThan,
    "gte": GreaterThanOrEqual,
    "lt": LessThan,
    "lte": LessThanOrEqual,
}


def _money(kind: str, comparison: Mapping[str, float]) -> list:
    """Exact comparisons of a sum or an average of amounts, in integer cents on both databases.

    A bound is taken as written (13.97 is 13.97, not the binary float next to it), and an
    average is compared without dividing: sum >= bound x count. Bounds have at most 4
    decimals, so both sides scale to integers.
    """
    conditions = []
    for key, bound in comparison.items():
        exact = Decimal(str(bound))
        extra = max(0, -int(exact.as_tuple().exponent) - 2)
        scaled = int(exact * 100 * 10**extra)
        cents: Combinable = F("_cents") * 10**extra if extra else F("_cents")
        if kind == "amount_avg":
            # numeric on PostgreSQL, so that a large bound times the count cannot overflow a bigint
            limit: Combinable = Cast(F("_n"), DecimalField(max_digits=30, decimal_places=0)) * scaled
        else:
            limit = Cast(Value(scaled), DecimalField(max_digits=30, decimal_places=0))
        conditions.append(_LOOKUPS[key](cents, limit))
    return conditions


def _orders(node: dict, ctx: CompileContext) -> Q:
    """Completed orders up to now: count, sum and average of amounts and units of line items in
    the period; first and last order over all of the person's orders."""
    spec = node["orders"]
    every = Order.objects.filter(workspace_id=ctx.workspace_id, status=Order.Status.COMPLETED, ordered_at__lte=ctx.now)
    if "channel" in spec:
        every = every.filter(channel=spec["channel"])
    orders = _period(every, "ordered_at", spec, ctx)
    aggregates: dict[str, Aggregate] = {}
    conditions: list = []
    zero_qualifies = True
    if "count" in spec:
        aggregates["_n"] = Count("*")
        conditions.append(_having("_n", spec["count"]))
        zero_qualifies &= _holds(spec["count"], 0)
    for key in ("amount_sum", "amount_avg"):
        if key in spec:
            aggregates["_n"] = Count("*")
            aggregates["_cents"] = Sum(Cast(Round(F("amount") * 100), BigIntegerField()))
            conditions.extend(_money(key, spec[key]))
            # With no order: the sum is 0, the average does not exist.
            zero_qualifies &= key == "amount_sum" and _holds(spec[key], 0)
    q = Q()
    if aggregates:
        grouped = orders.values("profile_id").annotate(**aggregates)
        if zero_qualifies:
            # Everyone but the buyers whose figures break a condition: people without an order
            # qualify, in one anti-join (see _counted).
            broken = Q()
            for condition in conditions:
                broken |= ~Q(condition)
            q = ~_in(grouped.filter(broken).values("profile_id"))
        else:
            q = _in(grouped.filter(*conditions).values("profile_id"))
    for key in ("first", "last"):
        if key in spec:
            q &= _recency(every, "ordered_at", key, spec[key], ctx)
    if "items" in spec:
        q &= _items(orders, spec["items"])
    if not q:
        return _in(orders.values("profile_id"))
    return q


def _items(orders: QuerySet, spec: Mapping[str, Any]) -> Q:
    """Units of line items (by sku and/or category) bought across the orders, one GROUP BY over
    the items unnested in SQL."""
    sql, params = orders.values("pk").query.sql_with_params()
    lines = f"customers_order o {json_elements('o.items', 'it')}"
    field = {key: json_member("it.value", key) for key in ("sku", "category")}
    if connection.vendor == "postgresql":
        quantity = (
            "CASE WHEN jsonb_typeof(it.value->'quantity') = 'number' THEN (it.value->>'quantity')::numeric ELSE 0 END"
        )
    else:
        quantity = "coalesce(CAST(json_extract(it.value, '$.quantity') AS INTEGER), 0)"
    where, args = [f"o.id IN ({sql})"], list(params)
    for key in ("sku", "category"):
        if key in spec:
            values = spec[key] if isinstance(spec[key], list) else [spec[key]]
            where.append(f"{field[key]} IN ({', '.join(['%s'] * len(values))})")
            args.extend(values)
    comparison = spec.get("quantity", {"gte": 1})
    operators = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
    having = " AND ".join(f"SUM({quantity}) {operators[key]} %s" for key in comparison)
    bounds = list(comparison.values())
    base = f"SELECT o.profile_id FROM {lines} WHERE {' AND '.join(where)} GROUP BY o.profile_id"
    if _holds(comparison, 0):  # "bought no more than 2": people who bought none qualify too
        return ~_in(RawSQL(f"{base} HAVING NOT ({having})", (*args, *bounds)))
    return _in(RawSQL(f"{base} HAVING {having}", (*args, *bounds)))


# --- geography -------------------------------------------------------------------------


def _geo(node: dict, ctx: CompileContext) -> Q:
    lat, lon = node["geo"]["near"]
    km = node["geo"]["km"]
    # A bounding box first (served by the (workspace, latitude, longitude) index), then the
    # exact great-circle distance by the haversine formula.
    dlat = math.degrees(km / EARTH_RADIUS_KM)
    dlon = math.degrees(km / (EARTH_RADIUS_KM * max(math.cos(math.radians(lat)), 1e-6)))
    box = Q(latitude__gte=lat - dlat, latitude__lte=lat + dlat, longitude__gte=lon - dlon, longitude__lte=lon + dlon)
    haversine = Power(Sin((Radians(F("latitude")) - math.radians(lat)) / 2), 2) + math.cos(math.radians(lat)) * Cos(
        Radians(F("latitude"))
    ) * Power(Sin((Radians(F("longitude")) - math.radians(lon)) / 2), 2)
    distance = 2 * EARTH_RADIUS_KM * ASin(Sqrt(haversine))
    # A predicate on the profile's own row: no subquery to plan, under OR and NOT alike.
    return box & Q(LessThanOrEqual(distance, km))


# --- consent and other segments ---------------------------------------------------------


def _consent(node: dict, ctx: CompileContext) -> Q:
    """Contactable at `now`: the latest record for the purpose and channel is a grant."""
    purpose, channel = node["consent"]["purpose"], node["consent"]["channel"]
    in_force = ConsentRecord.objects.filter(workspace_id=ctx.workspace_id).granted_at(
        purpose=purpose, channel=channel, when=ctx.now
    )
    return _in(in_force.values("profile_id"))


def _segment(node: dict, ctx: CompileContext) -> Q:
    members = ctx.segment_members.get(node["segment"])
    return Q(pk__in=[]) if members is None else _in(members)


_LEAVES: dict[str, Callable[[dict, CompileContext], Q]] = {
    "field": _field,
    "survey": _survey,
    "event": _event,
    "orders": _orders,
    "geo": _geo,
    "consent": _consent,
    "segment": _segment,
}
