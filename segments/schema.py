"""The rule language (segments.rules) as OpenAPI components, for the schema and generated clients.

`RuleNode` is a union of node kinds, each an object told apart by its one required key (`all`,
`any`, `not`, `field`, `survey`, `event`, `orders`, `geo`, `consent`, `segment`, and the keys of
the registered criterion families such as `rfm` or `persona`), none taking keys of another kind.
The validator (segments.rules) still has the last word on what depends on the workspace: an
attribute's type, a segment or a model that exists, an operator that applies to a field.
"""

from typing import Any

from customers.models import Channel, EventType
from privacy.models import ConsentPurpose
from segments.criteria import criteria
from segments.rules import (
    ABSOLUTE_MODES,
    ANY_EVENT,
    COMPARISON_KEYS,
    MAX_AMOUNT,
    MAX_COUNT,
    MAX_DEPTH,
    MAX_LIST,
    MAX_TEXT,
    OPERATORS,
    PROFILE_FIELDS,
)

REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def _only(key: str, value: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": {key: value},
        "required": [key],
        "additionalProperties": False,
    }


def _object(properties: dict[str, Any], required: list[str], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    if description:
        schema["description"] = description
    return schema


def _comparison(maximum: float) -> dict[str, Any]:
    return {
        "type": "object",
        "description": 'A comparison, e.g. {"gte": 3} or {"gte": 2, "lte": 5}.',
        "properties": {key: {"type": "number", "minimum": 0, "maximum": maximum} for key in sorted(COMPARISON_KEYS)},
        "additionalProperties": False,
        "minProperties": 1,
    }


def rule_components() -> dict[str, dict[str, Any]]:
    """The components of the rule language, by name."""
    no_nul = "^[^\\x00]*$"  # a definition holds no NUL character (refused with a 400)
    scalar = {
        "anyOf": [{"type": "string", "maxLength": MAX_TEXT, "pattern": no_nul}, {"type": "number"}, {"type": "boolean"}]
    }
    value = {
        "description": "A value, or a list of values for in, not_in, between, contains_any, contains_all.",
        "anyOf": [scalar, {"type": "array", "items": scalar, "maxItems": MAX_LIST}],
        "nullable": True,
    }
    operators = sorted({op for ops in OPERATORS.values() for op in ops})
    moment = {
        "type": "string",
        "maxLength": 40,
        "pattern": no_nul,
        "description": "A date (YYYY-MM-DD, a day of the workspace's calendar) or an ISO 8601 date-time.",
    }
    window = {
        "type": "string",
        "maxLength": 40,
        "pattern": no_nul,
        "description": "An ISO 8601 duration back from now, in days and hours: P1D, PT24H, P90D (at most 10 years).",
    }
    absolute = {
        "after": moment,
        "before": moment,
        "between": {"type": "array", "items": moment, "minItems": 2, "maxItems": 2},
    }
    recency = {
        "type": "object",
        "description": 'One of {"within": "P30D"}, {"older_than": "P90D"}, {"after": ...}, {"before": ...}, '
        '{"between": [start, end]}.',
        "properties": {"within": window, "older_than": window, **absolute},
        "additionalProperties": False,
        "minProperties": 1,
        "maxProperties": 1,
    }
    count = _comparison(MAX_COUNT)
    label = {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": no_nul}
    names = {"anyOf": [label, {"type": "array", "items": label, "minItems": 1, "maxItems": MAX_LIST}]}
    money = _comparison(MAX_AMOUNT)
    nodes: dict[str, dict[str, Any]] = {
        "RuleAll": _only(
            "all",
            {"type": "array", "items": _ref("RuleNode"), "minItems": 1, "maxItems": MAX_LIST},
            "Every condition holds.",
        ),
        "RuleAny": _only(
            "any",
            {"type": "array", "items": _ref("RuleNode"), "minItems": 1, "maxItems": MAX_LIST},
            "At least one condition holds.",
        ),
        "RuleNot": _only("not", _ref("RuleNode"), "The condition does not hold."),
        "RuleField": _object(
            {
                "field": {
                    "description": f"One of {', '.join(PROFILE_FIELDS)}, or attributes.<key> of a defined attribute.",
                    "anyOf": [
                        {"type": "string", "enum": list(PROFILE_FIELDS)},
                        {"type": "string", "maxLength": 74, "pattern": r"^attributes\.[a-z][a-z0-9_]{0,62}$"},
                    ],
                },
                "op": {"type": "string", "enum": operators},
                "value": value,
            },
            ["field", "op", "value"],
            "A profile field or attribute (demographic, geographic, attitudinal).",
        ),
        "RuleSurvey": _object(
            {
                "survey": label,
                "question": label,
                "op": {"type": "string", "enum": sorted(OPERATORS["survey"])},
                "value": value,
            },
            ["survey", "question", "op", "value"],
            "An answer to a survey question.",
        ),
        "RuleEvent": _object(
            {
                "event": {"type": "string", "enum": [*EventType.values, ANY_EVENT]},
                "channel": {"type": "string", "enum": list(Channel.values)},
                "properties": {"type": "object", "additionalProperties": scalar, "minProperties": 1},
                "within": window,
                "count": count,
                "first": recency,
                "last": recency,
                **absolute,
            },
            ["event"],
            f"Behaviour: events of a type (or of every type: {ANY_EVENT!r}), in a period, counted.",
        ),
        "RuleOrders": _only(
            "orders",
            _object(
                {
                    "within": window,
                    "channel": {"type": "string", "enum": list(Channel.values)},
                    "count": count,
                    "amount_sum": money,
                    "amount_avg": money,
                    "first": recency,
                    "last": recency,
                    "items": _object({"sku": names, "category": names, "quantity": count}, []),
                    **{mode: absolute[mode] for mode in ABSOLUTE_MODES},
                },
                [],
            ),
            "Transactions: orders in a period, counted and summed.",
        ),
        "RuleGeo": _only(
            "geo",
            _object(
                {
                    "near": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
                    "km": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 2000},
                },
                ["near", "km"],
            ),
            "Within km of [latitude, longitude].",
        ),
        "RuleConsent": _only(
            "consent",
            _object(
                {
                    "purpose": {"type": "string", "enum": list(ConsentPurpose.values)},
                    "channel": {"type": "string", "enum": list(Channel.values)},
                },
                ["purpose", "channel"],
            ),
            "A consent granted now for a purpose and channel.",
        ),
        "RuleSegment": _only("segment", {"type": "integer", "minimum": 1}, "Members of another segment."),
    }
    for key, family in sorted(criteria().items()):
        name = "Rule" + "".join(part.capitalize() for part in key.split("_"))
        nodes[name] = _only(
            key,
            family.schema or {"description": f"A {key} criterion (see the rule language)."},
            f"What Cible learns: the {key} criterion.",
        )
    components = dict(nodes)
    components["RuleNode"] = {
        "description": (
            f"A node of the rule language, nested at most {MAX_DEPTH} levels: all / any / not, or a condition. "
            "Each kind is an object with its one distinguishing key."
        ),
        "oneOf": [_ref(name) for name in nodes],
    }
    return components


def rule_language_hook(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing: the rule language's components, which RuleField points at."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, component in rule_components().items():
        schemas.setdefault(name, component)
    return result
