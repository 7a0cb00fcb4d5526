"""The segment rule language: validation.

A definition is a JSON tree of `all` / `any` / `not` nodes whose leaves are
conditions. `validate_definition` checks it whole and reports every problem
with the path of the node (`definition.all[2].value: expected a number`);
unknown keys, fields and operators are refused. It returns the segment ids the
definition refers to, so that the caller can check they exist and form no cycle.

Leaves:
    {"field": "age", "op": "between", "value": [25, 34]}              demographic
    {"field": "postal_code", "op": "starts_with", "value": ["69", "38"]}  geographic
    {"geo": {"near": [45.76, 4.84], "km": 10}}
    {"field": "attributes.interests", "op": "contains", "value": "running"}  attitudinal
    {"survey": "satisfaction_2026", "question": "nps", "op": "gte", "value": 9}
    {"event": "cart_abandoned", "channel": "web", "properties": {"category": "shoes"},
     "within": "P1D", "count": {"gte": 1}}                              behavioural
    {"event": "purchase", "last": {"older_than": "P90D"}}
    {"event": "app_open", "first": {"within": "P30D"}}
    {"event": "store_visit", "between": ["2026-03-01", "2026-03-31"]}
    {"event": "any", "channel": "sms", "within": "P90D"}              any event on a channel
    {"orders": {"within": "P90D", "count": {"gte": 3}, "amount_sum": {"gte": 200}}}  transactional
    {"orders": {"amount_avg": {"gte": 13.97}}}                          exact decimal comparison
    {"orders": {"first": {"after": "2026-03-01"}}}                       new customers
    {"orders": {"within": "P90D", "items": {"category": "shoes", "quantity": {"gte": 3}}}}
    {"consent": {"purpose": "direct_marketing", "channel": "email"}}
    {"segment": 17}
Windows are ISO 8601 durations in days and hours: P1D, PT24H, P90D. Absolute periods
(`after`, `before`, `between`) take dates, days of the workspace's calendar, or
ISO 8601 date-times. Everything is evaluated at a moment, now or a preview's `as_of`:
events and orders after it do not exist yet.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_date, parse_datetime, parse_duration
from django.utils.translation import gettext as _

from core.errors import json_literal
from core.time import DATE_RANGE_TEXT, in_date_range
from customers.models import AttributeType, Channel, EventType, Gender, LifecycleStage, SocioProfessionalCategory
from privacy.models import ConsentPurpose
from segments.criteria import criteria
from segments.errors import SegmentErrorCode

MAX_DEPTH = 12
MAX_NODES = 200
MAX_WINDOW = timedelta(days=3660)
MAX_AMOUNT = 10**12
ABSOLUTE_MODES = ("after", "before", "between")
MAX_LIST = 1_000
# The longest text a condition compares with (a city, a postal code prefix, an answer).
MAX_TEXT = 200
# Ages in years: beyond this no one is alive, and the birth-date arithmetic stays within the calendar.
MAX_AGE = 150
# Counts of events, orders or units: no one has more, and the bound stays a bigint.
MAX_COUNT = 10**9

# Profile fields: name -> kind
PROFILE_FIELDS: dict[str, str] = {
    "age": "number",
    "gender": "choice",
    "socio_professional_category": "choice",
    "lifecycle_stage": "choice",
    "city": "text",
    "postal_code": "text",
    "region": "text",
    "country": "text",
}
CHOICES: dict[str, set[str]] = {
    "gender": set(Gender.values),
    "socio_professional_category": set(SocioProfessionalCategory.values),
    "lifecycle_stage": set(LifecycleStage.values),
}
NUMBER_OPS = {"eq", "ne", "gt", "gte", "lt", "lte", "between", "is_set"}
OPERATORS: dict[str, set[str]] = {
    "number": NUMBER_OPS,
    "choice": {"eq", "ne", "in", "not_in", "is_set"},
    "text": {"eq", "ne", "in", "not_in", "starts_with", "is_set"},
    AttributeType.STRING: {"eq", "ne", "in", "not_in", "starts_with", "is_set"},
    AttributeType.NUMBER: NUMBER_OPS,
    AttributeType.BOOLEAN: {"eq", "is_set"},
    AttributeType.DATE: {"eq", "before", "after", "between", "is_set"},
    AttributeType.STRING_LIST: {"contains", "contains_any", "contains_all", "is_set"},
    "survey": {"eq", "ne", "in", "gt", "gte", "lt", "lte", "between", "contains", "answered"},
}
COMPARISON_KEYS = {"eq", "gt", "gte", "lt", "lte"}
# The event "type" that matches events of every type (with a channel: "used the channel").
ANY_EVENT = "any"


@dataclass
class ValidationResult:
    errors: list[str] = field(default_factory=list)
    segment_refs: set[int] = field(default_factory=set)
    nodes: int = 0
    # The workspace the definition belongs to, for the families that check what they name.
    workspace_id: int | None = None


def validate_definition(
    definition: Any, *, attribute_types: Mapping[str, str], workspace_id: int | None = None
) -> set[int]:
    """Check a definition; raise ValidationError({"definition": [...]}) listing each bad node by path.

    With `workspace_id`, the registered criteria families (segments.criteria) also check that
    what they name (an RFM segment, a persona, a model) exists in that workspace."""
    result = ValidationResult(workspace_id=workspace_id)
    _node(definition, "definition", 0, attribute_types, result)
    if result.nodes > MAX_NODES:
        result.errors.append(_("definition: at most %(max_nodes)s conditions.") % {"max_nodes": MAX_NODES})
    if result.errors:
        raise ValidationError(
            {"definition": [ValidationError(message, code=SegmentErrorCode.INVALID_RULE) for message in result.errors]}
        )
    return result.segment_refs


def definition_leaves(definition: Any, *, definitions: Mapping[int, Any]) -> Iterator[dict]:
    """Every condition of a definition, under `all`, `any` and `not`, and through the segments it
    refers to (their definitions read in `definitions`, each once)."""
    seen: set[int] = set()
    stack = [definition]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        children = [child for key in ("all", "any") if isinstance(node.get(key), list) for child in node[key]]
        if children or "not" in node:
            stack.extend(children)
            if "not" in node:
                stack.append(node["not"])
            continue
        yield node
        ref = node.get("segment")
        if isinstance(ref, int) and ref not in seen:
            seen.add(ref)
            stack.append(definitions.get(ref))


def parse_window(value: Any) -> timedelta | None:
    """An ISO 8601 duration in days/hours/minutes, positive and at most ten years; None if invalid."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    duration = parse_duration(value) if value.startswith(("P", "p")) else None
    if duration is None or duration <= timedelta(0) or duration > MAX_WINDOW:
        return None
    return duration


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _node(node: Any, path: str, depth: int, types: Mapping[str, str], result: ValidationResult) -> None:
    result.nodes += 1
    err = result.errors.append
    if depth > MAX_DEPTH:
        err(_("%(path)s: nested too deeply (at most %(max_depth)s levels).") % {"path": path, "max_depth": MAX_DEPTH})
        return
    if not isinstance(node, dict) or not node:
        err(_("%(path)s: expected a condition object.") % {"path": path})
        return
    if "all" in node or "any" in node:
        key = "all" if "all" in node else "any"
        if set(node) != {key}:
            err(
                _("%(path)s: '%(key)s' takes no other keys (found %(value)s).")
                % {"path": path, "key": key, "value": ", ".join(sorted(set(node) - {key}))}
            )
        children = node[key]
        if not isinstance(children, list) or not children:
            err(_("%(path)s.%(key)s: expected a non-empty list of conditions.") % {"path": path, "key": key})
            return
        for index, child in enumerate(children):
            _node(child, f"{path}.{key}[{index}]", depth + 1, types, result)
        return
    if "not" in node:
        if set(node) != {"not"}:
            err(_("%(path)s: 'not' takes no other keys.") % {"path": path})
        _node(node["not"], f"{path}.not", depth + 1, types, result)
        return
    for kind, check in (
        ("field", _field),
        ("survey", _survey),
        ("event", _event),
        ("orders", _orders),
        ("geo", _geo),
        ("consent", _consent),
        ("segment", _segment),
    ):
        if kind in node:
            check(node, path, types, result)
            return
    families = criteria()
    for key, family in families.items():
        if key in node:
            if _keys(node, path, {key}, {key}, result):
                family.validate(node[key], f"{path}.{key}", result.workspace_id, result.errors)
            return
    known = ", ".join(
        ["all", "any", "not", "field", "survey", "event", "orders", "geo", "consent", "segment", *families]
    )
    err(_("%(path)s: unknown condition; expected one of %(known)s.") % {"path": path, "known": known})


def _keys(node: dict, path: str, allowed: set[str], required: set[str], result: ValidationResult) -> bool:
    unknown = set(node) - allowed
    missing = required - set(node)
    for key in sorted(unknown):
        result.errors.append(_("%(path)s.%(key)s: unknown key.") % {"path": path, "key": key})
    for key in sorted(missing):
        result.errors.append(_("%(path)s.%(key)s: required.") % {"path": path, "key": key})
    return not unknown and not missing


def _value(
    kind: str, op: str, value: Any, path: str, result: ValidationResult, *, choices: set[str] | None = None
) -> None:
    err = result.errors.append
    where = f"{path}.value"
    if op in ("is_set", "answered"):
        if not isinstance(value, bool):
            err(_("%(path)s: expected true or false.") % {"path": where})
        return
    if op == "between":
        if not (isinstance(value, list) and len(value) == 2):
            err(_("%(path)s: expected a list of two bounds [low, high].") % {"path": where})
            return
        for bound in value:
            _scalar(kind, bound, where, result, choices=choices)
        if (
            all(_is_number(b) for b in value)
            and value[0] > value[1]
            or (kind == AttributeType.DATE and all(isinstance(b, str) for b in value) and value[0] > value[1])
        ):
            err(_("%(path)s: the low bound is above the high bound.") % {"path": where})
        return
    if op in ("in", "not_in", "contains_any", "contains_all") or (op == "starts_with" and isinstance(value, list)):
        if not isinstance(value, list) or not value or len(value) > MAX_LIST:
            err(
                _("%(path)s: expected a non-empty list (at most %(max_list)s values).")
                % {"path": where, "max_list": MAX_LIST}
            )
            return
        item_kind = AttributeType.STRING if kind == AttributeType.STRING_LIST else kind
        for item in value:
            _scalar(item_kind, item, where, result, choices=choices)
        return
    if kind == AttributeType.STRING_LIST or op == "starts_with":
        if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
            err(
                _("%(path)s: expected a non-empty string (at most %(max_text)s characters).")
                % {"path": where, "max_text": MAX_TEXT}
            )
        return
    _scalar(kind, value, where, result, choices=choices)


def _scalar(kind: str, value: Any, where: str, result: ValidationResult, *, choices: set[str] | None = None) -> None:
    err = result.errors.append
    if kind in ("number", AttributeType.NUMBER):
        if not _is_number(value):
            err(_("%(path)s: expected a number.") % {"path": where})
    elif kind == AttributeType.BOOLEAN:
        if not isinstance(value, bool):
            err(_("%(path)s: expected true or false.") % {"path": where})
    elif kind == AttributeType.DATE:
        try:
            ok = isinstance(value, str) and parse_date(value) is not None
        except ValueError:
            ok = False
        if not ok:
            err(_("%(path)s: expected a date as YYYY-MM-DD.") % {"path": where})
    elif kind == "survey":
        if not (isinstance(value, (str, bool)) or _is_number(value)):
            err(_("%(path)s: expected a text, number or true/false.") % {"path": where})
        elif isinstance(value, str) and len(value) > MAX_TEXT:
            err(_("%(path)s: at most %(max_text)s characters.") % {"path": where, "max_text": MAX_TEXT})
    elif not isinstance(value, str):
        err(_("%(path)s: expected a string.") % {"path": where})
    elif choices is not None and value not in choices:
        err(
            _("%(path)s: %(value)s is not one of %(value2)s.")
            % {"path": where, "value": json_literal(value), "value2": ", ".join(sorted(choices))}
        )
    elif len(value) > MAX_TEXT:
        err(_("%(path)s: at most %(max_text)s characters.") % {"path": where, "max_text": MAX_TEXT})


def _field(node: dict, path: str, types: Mapping[str, str], result: ValidationResult) -> None:
    if not _keys(node, path, {"field", "op", "value"}, {"field", "op", "value"}, result):
        return
    name, op = node["field"], node["op"]
    if not isinstance(name, str):
        result.errors.append(_("%(path)s.field: expected a string.") % {"path": path})
        return
    if name.startswith("attributes."):
        key = name[len("attributes.") :]
        kind = types.get(key)
        if kind is None:
            result.errors.append(
                _("%(path)s.field: unknown attribute %(value)s.") % {"path": path, "value": json_literal(key)}
            )
            return
    elif name in PROFILE_FIELDS:
        kind = PROFILE_FIELDS[name]
    else:
        result.errors.append(
            _("%(path)s.field: unknown field %(value)s; expected one of %(value2)s or attributes.<key>.")
            % {"path": path, "value": json_literal(name), "value2": ", ".join(PROFILE_FIELDS)}
        )
        return
    if not isinstance(op, str) or op not in OPERATORS[kind]:
        result.errors.append(
            _("%(path)s.op: %(value)s does not apply to %(name)s; use one of %(value2)s.")
            % {"path": path, "value": json_literal(op), "name": name, "value2": ", ".join(sorted(OPERATORS[kind]))}
        )
        return
    _value(kind, op, node["value"], path, result, choices=CHOICES.get(name))
    if name == "age" and op != "is_set":
        bounds = node["value"] if isinstance(node["value"], list) else [node["value"]]
        if any(_is_number(bound) and not 0 <= bound <= MAX_AGE for bound in bounds):
            result.errors.append(
                _("%(path)s.value: an age is a number of years from 0 to %(max_age)s.")
                % {"path": path, "max_age": MAX_AGE}
            )


def _survey(node: dict, path: str, types: Mapping[str, str], result: ValidationResult) -> None:
    if not _keys(node, path, {"survey", "question", "op", "value"}, {"survey", "question", "op", "value"}, result):
        return
    for key in ("survey", "question"):
        if not isinstance(node[key], str) or not node[key] or len(node[key]) > MAX_TEXT:
            result.errors.append(
                _("%(path)s.%(key)s: expected a string (at most %(max_text)s characters).")
                % {"path": path, "key": key, "max_text": MAX_TEXT}
            )
    op = node["op"]
    if not isinstance(op, str) or op not in OPERATORS["survey"]:
        result.errors.append(
            _("%(path)s.op: unknown operator %(value)s; use one of %(value2)s.")
            % {"path": path, "value": json_literal(op), "value2": ", ".join(sorted(OPERATORS["survey"]))}
        )
        return
    kind = "number" if op in ("gt", "gte", "lt", "lte", "between") else "survey"
    if op == "contains":
        kind = AttributeType.STRING_LIST
    _value(kind, op, node["value"], path, result)


def _comparison(value: Any, path: str, result: ValidationResult, *, maximum: float | None = MAX_COUNT) -> None:
    if not isinstance(value, dict) or not value:
        result.errors.append(_('%(path)s: expected a comparison such as {"gte": 3}.') % {"path": path})
        return
    for key, bound in value.items():
        if key not in COMPARISON_KEYS:
            result.errors.append(
                _("%(path)s.%(key)s: unknown comparison; use %(value)s.")
                % {"path": path, "key": key, "value": ", ".join(sorted(COMPARISON_KEYS))}
            )
        elif not _is_number(bound) or bound < 0:
            result.errors.append(_("%(path)s.%(key)s: expected a number of at least 0.") % {"path": path, "key": key})
        elif maximum is not None and bound > maximum:
            result.errors.append(
                _("%(path)s.%(key)s: expected a number of at most %(value)s.")
                % {"path": path, "key": key, "value": format(maximum, ",")}
            )


def _moment(value: Any) -> tuple[str, Any] | None:
    """("date", date) or ("datetime", datetime) for a date YYYY-MM-DD or an ISO 8601 date-time; None if neither."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        if len(value) == 10:
            day = parse_date(value)
            return None if day is None else ("date", day)
        moment = parse_datetime(value)
    except ValueError:
        return None
    return None if moment is None else ("datetime", moment)


def _absolute(mode: str, value: Any, where: str, result: ValidationResult) -> None:
    expected = "a date (YYYY-MM-DD) or a date-time (YYYY-MM-DDTHH:MM[:SS][+HH:MM])"
    if mode != "between":
        moment = _moment(value)
        if moment is None:
            result.errors.append(_("%(path)s: expected %(expected)s.") % {"path": where, "expected": expected})
        elif not in_date_range(moment[1]):
            result.errors.append(
                _("%(path)s: expected a date %(date_range_text)s.")
                % {"path": where, "date_range_text": DATE_RANGE_TEXT}
            )
        return
    if not (isinstance(value, list) and len(value) == 2):
        result.errors.append(
            _("%(path)s: expected a list of two bounds [start, end], each %(expected)s.")
            % {"path": where, "expected": expected}
        )
        return
    bounds = [_moment(bound) for bound in value]
    if any(bound is None for bound in bounds):
        result.errors.append(
            _("%(path)s: expected a list of two bounds [start, end], each %(expected)s.")
            % {"path": where, "expected": expected}
        )
        return
    if not all(in_date_range(bound[1]) for bound in bounds):  # type: ignore[index]
        result.errors.append(
            _("%(path)s: expected dates %(date_range_text)s.") % {"path": where, "date_range_text": DATE_RANGE_TEXT}
        )
        return
    (kind_a, a), (kind_b, b) = bounds  # type: ignore[misc]
    comparable = kind_a == kind_b and (kind_a == "date" or (a.tzinfo is None) == (b.tzinfo is None))
    if comparable and a > b:
        result.errors.append(_("%(path)s: the start is after the end.") % {"path": where})


def _period_keys(node: dict, path: str, result: ValidationResult) -> None:
    """The period of an event or order condition: a window back from now and/or absolute bounds."""
    if "within" in node and parse_window(node["within"]) is None:
        result.errors.append(
            _("%(path)s.within: expected an ISO 8601 duration such as P7D or PT24H (at most 10 years).")
            % {"path": path}
        )
    for mode in ABSOLUTE_MODES:
        if mode in node:
            _absolute(mode, node[mode], f"{path}.{mode}", result)


def _recency(value: Any, path: str, result: ValidationResult) -> None:
    modes = ("within", "older_than", *ABSOLUTE_MODES)
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in modes:
        result.errors.append(
            _(
                '%(path)s: expected one of {"within": "P30D"}, {"older_than": "P90D"}, {"before": "2026-01-01"}, {"after": "2026-01-01"} or {"between": ["2026-01-01", "2026-03-31"]}.'
            )
            % {"path": path}
        )
        return
    key, bound = next(iter(value.items()))
    if key in ABSOLUTE_MODES:
        _absolute(key, bound, f"{path}.{key}", result)
    elif parse_window(bound) is None:
        result.errors.append(
            _("%(path)s.%(key)s: expected an ISO 8601 duration such as P7D or PT24H (at most 10 years).")
            % {"path": path, "key": key}
        )


def _event(node: dict, path: str, types: Mapping[str, str], result: ValidationResult) -> None:
    allowed = {"event", "channel", "properties", "within", "count", "first", "last", *ABSOLUTE_MODES}
    if not _keys(node, path, allowed, {"event"}, result):
        return
    if node["event"] != ANY_EVENT and node["event"] not in EventType.values:
        result.errors.append(
            _(
                "%(path)s.event: unknown event type %(value)s. Use an event type, or %(value2)s for events of every type."
            )
            % {"path": path, "value": json_literal(node["event"]), "value2": json_literal(ANY_EVENT)}
        )
    if "channel" in node and node["channel"] not in Channel.values:
        result.errors.append(
            _("%(path)s.channel: unknown channel %(value)s.") % {"path": path, "value": json_literal(node["channel"])}
        )
    if "properties" in node:
        props = node["properties"]
        if not isinstance(props, dict) or not props:
            result.errors.append(_("%(path)s.properties: expected an object of property values.") % {"path": path})
        else:
            for key, value in props.items():
                if not (isinstance(value, (str, bool)) or _is_number(value)) or (
                    isinstance(value, str) and len(value) > MAX_TEXT
                ):
                    result.errors.append(
                        _(
                            "%(path)s.properties.%(key)s: expected a text (at most %(max_text)s characters), number or true/false."
                        )
                        % {"path": path, "key": key, "max_text": MAX_TEXT}
                    )
    _period_keys(node, path, result)
    if "count" in node:
        _comparison(node["count"], f"{path}.count", result)
    recency = [key for key in ("first", "last") if key in node]
    period = [key for key in ("count", "within", *ABSOLUTE_MODES) if key in node]
    if len(recency) > 1 or (recency and period):
        result.errors.append(
            _("%(path)s: use either count with a period (within, after, before, between), or one of first/last.")
            % {"path": path}
        )
    for key in recency:
        _recency(node[key], f"{path}.{key}", result)


def _money(value: Any, path: str, result: ValidationResult) -> None:
    """A comparison of amounts: numbers from 0 to 1e12 with at most 4 decimals, compared exactly."""
    _comparison(value, path, result, maximum=None)  # bounded below, with the decimals
    if not isinstance(value, dict):
        return
    for key, bound in value.items():
        if key in COMPARISON_KEYS and _is_number(bound) and bound >= 0:
            exact = Decimal(str(bound))
            if bound > MAX_AMOUNT or not exact.is_finite() or -int(exact.as_tuple().exponent) > 4:
                result.errors.append(
                    _("%(path)s.%(key)s: expected an amount of at most 1e12 with at most 4 decimals.")
                    % {"path": path, "key": key}
                )


def _items(value: Any, path: str, result: ValidationResult) -> None:
    if not isinstance(value, dict):
        result.errors.append(_('%(path)s: expected {"category": "shoes", "quantity": {"gte": 3}}.') % {"path": path})
        return
    if not _keys(value, path, {"sku", "category", "quantity"}, set(), result):
        return
    for key in ("sku", "category"):
        if key in value:
            names = value[key] if isinstance(value[key], list) else [value[key]]
            if not names or len(names) > MAX_LIST or not all(isinstance(n, str) and 0 < len(n) <= 200 for n in names):
                result.errors.append(
                    _("%(path)s.%(key)s: expected a text or a non-empty list of texts (at most %(max_list)s).")
                    % {"path": path, "key": key, "max_list": MAX_LIST}
                )
    if "quantity" in value:
        _comparison(value["quantity"], f"{path}.quantity", result)


def _orders(node: dict, path: str, types: Mapping[str, str], result: ValidationResult) -> None:
    if not _keys(node, path, {"orders"}, {"orders"}, result):
        return
    spec = node["orders"]
    where = f"{path}.orders"
    if not isinstance(spec, dict):
        result.errors.append(_("%(path)s: expected an object.") % {"path": where})
        return
    allowed = {"within", "channel", "count", "amount_sum", "amount_avg", "first", "last", "items", *ABSOLUTE_MODES}
    if not _keys(spec, where, allowed, set(), result):
        return
    _period_keys(spec, where, result)
    if "channel" in spec and spec["channel"] not in Channel.values:
        result.errors.append(
            _("%(path)s.channel: unknown channel %(value)s.") % {"path": where, "value": json_literal(spec["channel"])}
        )
    if "count" in spec:
        _comparison(spec["count"], f"{where}.count", result)
    for key in ("amount_sum", "amount_avg"):
        if key in spec:
            _money(spec[key], f"{where}.{key}", result)
    for key in ("first", "last"):
        if key in spec:
            _recency(spec[key], f"{where}.{key}", result)
    if "items" in spec:
        _items(spec["items"], f"{where}.items", result)


def _geo(node: dict, path: str, types: Mapping[str, str], result: ValidationResult) -> None:
    if not _keys(node, path, {"geo"}, {"geo"}, result):
        return
    spec, where = node["geo"], f"{path}.geo"
    if not isinstance(spec, dict) or not _keys(spec, where, {"near", "km"}, {"near", "km"}, result):
        if not isinstance(spec, dict):
            result.errors.append(_('%(path)s: expected {"near": [lat, lon], "km": 10}.') % {"path": where})
        return
    near = spec["near"]
    if not (isinstance(near, list) and len(near) == 2 and all(_is_number(v) for v in near)):
        result.errors.append(_("%(path)s.near: expected [latitude, longitude].") % {"path": where})
    elif not (-90 <= near[0] <= 90 and -180 <= near[1] <= 180):
        result.errors.append(
            _("%(path)s.near: latitude must be within ±90 and longitude within ±180.") % {"path": where}
        )
    if not _is_number(spec["km"]) or not 0 < spec["km"] <= 2_000:
        result.errors.append(_("%(path)s.km: expected a distance in km above 0 and at most 2000.") % {"path": where})


def _consent(node: dict, path: str, types: Mapping[str, str], result: ValidationResult) -> None:
    if not _keys(node, path, {"consent"}, {"consent"}, result):
        return
    spec, where = node["consent"], f"{path}.consent"
    if not isinstance(spec, dict):
        result.errors.append(_('%(path)s: expected {"purpose": ..., "channel": ...}.') % {"path": where})
        return
    if not _keys(spec, where, {"purpose", "channel"}, {"purpose", "channel"}, result):
        return
    if spec["purpose"] not in ConsentPurpose.values:
        result.errors.append(
            _("%(path)s.purpose: unknown purpose %(value)s.") % {"path": where, "value": json_literal(spec["purpose"])}
        )
    if spec["channel"] not in Channel.values:
        result.errors.append(
            _("%(path)s.channel: unknown channel %(value)s.") % {"path": where, "value": json_literal(spec["channel"])}
        )


def _segment(node: dict, path: str, types: Mapping[str, str], result: ValidationResult) -> None:
    if not _keys(node, path, {"segment"}, {"segment"}, result):
        return
    ref = node["segment"]
    if isinstance(ref, bool) or not isinstance(ref, int) or ref <= 0:
        result.errors.append(_("%(path)s.segment: expected a segment id.") % {"path": path})
        return
    result.segment_refs.add(ref)
