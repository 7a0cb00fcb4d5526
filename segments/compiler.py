"""The segment rule language: compilation to one SQL query over profiles.

`compile_definition` turns a validated definition into a Q object on Profile.
Event, order and survey conditions become `id IN (SELECT profile_id ... GROUP BY
profile_id HAVING ...)` subqueries, which PostgreSQL runs as hash semi-joins over
the workspace-first indexes: set-based, never a Python loop over profiles.
A reference to another segment reads the current version of its audience.
"""

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Avg, Count, F, Max, Min, Q, QuerySet, Sum, TextField
from django.db.models.fields.json import KT
from django.db.models.functions import ASin, Cast, Cos, Power, Radians, Sin, Sqrt

from core.time import years_ago
from customers.models import Event, Order, Profile, SurveyResponse
from privacy.models import ConsentRecord
from segments.rules import parse_window

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class CompileContext:
    workspace_id: int
    now: datetime
    attribute_types: Mapping[str, str]
    # segment id -> profile ids of its current audience; a segment never computed has no members.
    segment_members: Mapping[int, QuerySet]


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


def _compile(node: dict, ctx: CompileContext) -> Q:
    if "all" in node:
        q = Q()
        for child in node["all"]:
            q &= _compile(child, ctx)
        return q
    if "any" in node:
        q = Q(pk__in=[])  # neutral element of OR
        for child in node["any"]:
            q |= _compile(child, ctx)
        return q
    if "not" in node:
        return ~_compile(node["not"], ctx)
    for key, compiler in _LEAVES.items():
        if key in node:
            return compiler(node, ctx)
    raise ValueError(f"Not a validated definition: {node!r}")


# --- profile fields ------------------------------------------------------------------


def _field(node: dict, ctx: CompileContext) -> Q:
    name, op, value = node["field"], node["op"], node["value"]
    if name == "age":
        return _age(op, value, ctx)
    if name.startswith("attributes."):
        return _attribute(name[len("attributes.") :], op, value, ctx)
    # People type "lyon" as often as "Lyon".
    return _compare(name, op, value, case_insensitive=name == "city")


def _compare(column: str, op: str, value: Any, *, case_insensitive: bool = False) -> Q:
    if op == "is_set":
        present = ~Q(**{column: ""}) & Q(**{f"{column}__isnull": False})
        return present if value else ~present
    if op == "eq":
        return Q(**{f"{column}__iexact" if case_insensitive else column: value})
    if op == "ne":
        return ~Q(**{f"{column}__iexact" if case_insensitive else column: value})
    if op in ("in", "not_in"):
        if case_insensitive:
            q = Q(pk__in=[])
            for item in value:
                q |= Q(**{f"{column}__iexact": item})
        else:
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
    # Strings, numbers, yes/no and ISO dates compare as JSON values on both databases.
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
    return Q(pk__in=matching.values("pk"))


# --- survey answers ------------------------------------------------------------------


def _survey(node: dict, ctx: CompileContext) -> Q:
    answers = SurveyResponse.objects.filter(
        workspace_id=ctx.workspace_id, survey=node["survey"], question=node["question"]
    )
    op, value = node["op"], node["value"]
    if op == "answered":
        q = Q(pk__in=answers.values("profile_id"))
        return q if value else ~q
    if op == "contains":
        if connection.vendor == "postgresql":
            matching = answers.filter(answer__contains=[value])
        else:
            matching = answers.alias(_text=Cast("answer", TextField())).filter(_text__contains=json.dumps(value))
    elif op == "ne":
        return Q(pk__in=answers.values("profile_id")) & ~Q(pk__in=answers.filter(answer=value).values("profile_id"))
    elif op == "in":
        matching = answers.filter(answer__in=value)
    else:
        matching = answers.filter(_compare("answer", op, value))
    return Q(pk__in=matching.values("profile_id"))


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
    events = Event.objects.filter(workspace_id=ctx.workspace_id, type=node["event"])
    if "channel" in node:
        events = events.filter(channel=node["channel"])
    for key, value in node.get("properties", {}).items():
        events = events.filter(**{f"properties__{key}": value})
    for key in ("first", "last"):
        if key in node:
            ((mode, window),) = node[key].items()
            edge = ctx.now - _window(window)
            moment = (Min if key == "first" else Max)("occurred_at")
            condition = Q(moment__gte=edge) if mode == "within" else Q(moment__lt=edge)
            people = events.values("profile_id").annotate(moment=moment).filter(condition).values("profile_id")
            return Q(pk__in=people)
    if "within" in node:
        events = events.filter(occurred_at__gte=ctx.now - _window(node["within"]), occurred_at__lte=ctx.now)
    return _counted(events, node.get("count", {"gte": 1}))


def _counted(rows: QuerySet, comparison: Mapping[str, float]) -> Q:
    """Profiles whose number of rows satisfies the comparison, zero included when it should be."""
    if comparison == {"gte": 1} or comparison == {"gt": 0}:
        return Q(pk__in=rows.values("profile_id"))
    having = rows.values("profile_id").annotate(n=Count("*")).filter(_having("n", comparison)).values("profile_id")
    q = Q(pk__in=having)
    if _holds(comparison, 0):  # "did not do X": people with no row at all qualify too
        q |= ~Q(pk__in=rows.values("profile_id"))
    return q


# --- transactions: orders ------------------------------------------------------------


def _orders(node: dict, ctx: CompileContext) -> Q:
    spec = node["orders"]
    orders = Order.objects.filter(workspace_id=ctx.workspace_id, status=Order.Status.COMPLETED)
    if "within" in spec:
        orders = orders.filter(ordered_at__gte=ctx.now - _window(spec["within"]), ordered_at__lte=ctx.now)
    if "channel" in spec:
        orders = orders.filter(channel=spec["channel"])
    aggregates: dict[str, Aggregate] = {}
    conditions = Q()
    zero_qualifies = True
    for key, aggregate in (("count", Count("*")), ("amount_sum", Sum("amount")), ("amount_avg", Avg("amount"))):
        if key in spec:
            aggregates[f"_{key}"] = aggregate
            conditions &= _having(f"_{key}", spec[key])
            # With no order: count and sum are 0, the average does not exist.
            zero_qualifies &= key != "amount_avg" and _holds(spec[key], 0)
    if "last" in spec:
        ((mode, window),) = spec["last"].items()
        edge = ctx.now - _window(window)
        aggregates["_last"] = Max("ordered_at")
        conditions &= Q(_last__gte=edge) if mode == "within" else Q(_last__lt=edge)
        zero_qualifies = False
    if not aggregates:
        return Q(pk__in=orders.values("profile_id"))
    buyers = orders.values("profile_id").annotate(**aggregates).filter(conditions).values("profile_id")
    q = Q(pk__in=buyers)
    if zero_qualifies:
        q |= ~Q(pk__in=orders.values("profile_id"))
    return q


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
    within = Profile.objects.filter(workspace_id=ctx.workspace_id).filter(box).alias(_km=distance).filter(_km__lte=km)
    return Q(pk__in=within.values("pk"))


# --- consent and other segments ---------------------------------------------------------


def _consent(node: dict, ctx: CompileContext) -> Q:
    """Contactable at `now`: the latest record for the purpose and channel is a grant."""
    purpose, channel = node["consent"]["purpose"], node["consent"]["channel"]
    in_force = ConsentRecord.objects.filter(workspace_id=ctx.workspace_id).granted_at(
        purpose=purpose, channel=channel, when=ctx.now
    )
    return Q(pk__in=in_force.values("profile_id"))


def _segment(node: dict, ctx: CompileContext) -> Q:
    members = ctx.segment_members.get(node["segment"])
    return Q(pk__in=[]) if members is None else Q(pk__in=members)


_LEAVES: dict[str, Callable[[dict, CompileContext], Q]] = {
    "field": _field,
    "survey": _survey,
    "event": _event,
    "orders": _orders,
    "geo": _geo,
    "consent": _consent,
    "segment": _segment,
}
