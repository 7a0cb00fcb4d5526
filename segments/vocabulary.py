"""What the segment builder offers and says: criteria by facet, values from the workspace's data,
the rule read back as a sentence, and hints when a value matches nobody.

Everything a marketer reads here is translated (French and English): labels of fields, operators
and coded values, and the sentence. The builder itself (static/segments/builder.js) holds no text
of its own; it shows what `catalogue` sends.
"""

import difflib
import json
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Count
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from accounts.models import Workspace
from core.folding import fold
from core.sql import json_elements, json_member
from customers.models import (
    AttributeDefinition,
    Channel,
    EventType,
    Gender,
    LifecycleStage,
    Profile,
    SocioProfessionalCategory,
    SurveyQuestion,
)
from privacy.models import ConsentPurpose
from segments.compiler import FOLDED_FIELDS
from segments.criteria import criteria
from segments.models import Segment
from segments.rules import OPERATORS, PROFILE_FIELDS, parse_window

FACETS = [
    ("demographic", gettext_lazy("Who they are")),
    ("geographic", gettext_lazy("Where they live")),
    ("attitudinal", gettext_lazy("What they think and like")),
    ("behavioural", gettext_lazy("What they did")),
    ("transactional", gettext_lazy("What they bought")),
    ("consent", gettext_lazy("What they agreed to")),
    ("segments", gettext_lazy("Other segments")),
    ("scores", gettext_lazy("Scores and personas")),
]

FIELD_LABELS = {
    "age": gettext_lazy("Age"),
    "gender": gettext_lazy("Gender"),
    "socio_professional_category": gettext_lazy("Occupation"),
    "lifecycle_stage": gettext_lazy("Customer or prospect"),
    "city": gettext_lazy("City"),
    "postal_code": gettext_lazy("Postal code"),
    "region": gettext_lazy("Region"),
    "country": gettext_lazy("Country"),
}
FIELD_FACETS = {
    "age": "demographic",
    "gender": "demographic",
    "socio_professional_category": "demographic",
    "lifecycle_stage": "demographic",
    "city": "geographic",
    "postal_code": "geographic",
    "region": "geographic",
    "country": "geographic",
}
CHOICE_LABELS = {
    "gender": Gender,
    "socio_professional_category": SocioProfessionalCategory,
    "lifecycle_stage": LifecycleStage,
}

OP_LABELS = {
    "eq": gettext_lazy("is"),
    "ne": gettext_lazy("is not"),
    "in": gettext_lazy("is one of"),
    "not_in": gettext_lazy("is none of"),
    "starts_with": gettext_lazy("starts with"),
    "gt": gettext_lazy("is more than"),
    "gte": gettext_lazy("is at least"),
    "lt": gettext_lazy("is less than"),
    "lte": gettext_lazy("is at most"),
    "between": gettext_lazy("is between"),
    "contains": gettext_lazy("contains"),
    "contains_any": gettext_lazy("contains any of"),
    "contains_all": gettext_lazy("contains all of"),
    "before": gettext_lazy("is before"),
    "after": gettext_lazy("is after"),
    "answered": gettext_lazy("was answered"),
    "is_set": gettext_lazy("is known"),
}
# The order operators are offered in, most useful first.
OP_ORDER = list(OP_LABELS)

# What the builder's own controls say.
TEXTS = {
    "all": gettext_lazy("all of these"),
    "any": gettext_lazy("any of these"),
    "match": gettext_lazy("People who match"),
    "exclude": gettext_lazy("Exclude"),
    "add_condition": gettext_lazy("Add a condition"),
    "add_group": gettext_lazy("Add a group"),
    "remove": gettext_lazy("Remove"),
    "choose": gettext_lazy("Choose a criterion…"),
    "any_channel": gettext_lazy("on any channel"),
    "within_days": gettext_lazy("in the last (days)"),
    "at_least_times": gettext_lazy("at least (times)"),
    "orders_count": gettext_lazy("at least (orders)"),
    "amount_sum": gettext_lazy("spent at least"),
    "any_purpose": gettext_lazy("any purpose"),
    "near_km": gettext_lazy("km around"),
    "latitude": gettext_lazy("latitude"),
    "longitude": gettext_lazy("longitude"),
    "and": gettext_lazy("and"),
    "yes": gettext_lazy("yes"),
    "no": gettext_lazy("no"),
    "advanced": gettext_lazy("Advanced: the rules as JSON"),
    "raw": gettext_lazy("A condition the builder cannot show (edit it as JSON)"),
    "estimate": gettext_lazy("Estimate from a sample"),
    "exact": gettext_lazy("Exact count"),
    "counting": gettext_lazy("Counting…"),
    "people": gettext_lazy("people"),
    "of": gettext_lazy("of"),
    "for_example": gettext_lazy("For example:"),
    "empty": gettext_lazy("Add a condition to start: every profile matches an empty rule."),
    "invalid_json": gettext_lazy("Not valid JSON yet:"),
    "separate": gettext_lazy("Separate values with commas"),
}

SUGGESTED_FIELDS = ("city", "region", "country", "postal_code", "item.category", "item.sku")
# Line items suggested from the orders of the last year (the index on order dates bounds the read).
ITEM_WINDOW_DAYS = 365
SUGGESTION_TTL = 300  # seconds a workspace's distinct values are kept for type-ahead and hints
MAX_SUGGESTIONS = 12


def _pairs(choices: Iterable[tuple[str, Any]]) -> list[list[str]]:
    return [[value, str(label)] for value, label in choices]


def _ops(kind: str) -> list[list[str]]:
    allowed = OPERATORS[kind]
    return [[op, str(OP_LABELS[op])] for op in OP_ORDER if op in allowed]


def catalogue(*, workspace: Workspace) -> dict[str, Any]:
    """The criteria the builder offers in this workspace, in the user's language."""
    items: list[dict[str, Any]] = []
    for name, kind in PROFILE_FIELDS.items():
        item: dict[str, Any] = {
            "id": f"field:{name}",
            "facet": FIELD_FACETS[name],
            "label": str(FIELD_LABELS[name]),
            "node": "field",
            "field": name,
            "type": kind,
            "ops": _ops(kind),
        }
        if name in CHOICE_LABELS:
            item["choices"] = _pairs(CHOICE_LABELS[name].choices)
        if name in SUGGESTED_FIELDS:
            item["suggest"] = name
        items.append(item)
    items.append({"id": "geo", "facet": "geographic", "label": _("Near a place"), "node": "geo"})
    for key, label, kind, options in AttributeDefinition.objects.filter(workspace=workspace).values_list(
        "key", "label", "type", "options"
    ):
        item = {
            "id": f"field:attributes.{key}",
            "facet": "attitudinal",
            "label": label or key,
            "node": "field",
            "field": f"attributes.{key}",
            "type": kind,
            "ops": _ops(kind),
        }
        if options:
            item["choices"] = [[str(option), str(option)] for option in options]
        items.append(item)
    questions = [
        [survey, question, label, options or []]
        for survey, question, label, options in SurveyQuestion.objects.filter(workspace=workspace)
        .order_by("survey", "question")
        .values_list("survey", "question", "label", "options")
    ]
    if questions:
        items.append(
            {
                "id": "survey",
                "facet": "attitudinal",
                "label": _("Survey answer"),
                "node": "survey",
                "questions": questions,
                "ops": _ops("survey"),
            }
        )
    items.append({"id": "event", "facet": "behavioural", "label": _("Did something"), "node": "event"})
    items.append({"id": "orders", "facet": "transactional", "label": _("Orders"), "node": "orders"})
    items.append(
        {
            "id": "items",
            "facet": "transactional",
            "label": _("Bought a category or a product"),
            "node": "items",
            "keys": [["category", str(_("category"))], ["sku", str(_("product (SKU)"))]],
        }
    )
    items.append({"id": "consent", "facet": "consent", "label": _("Consents to"), "node": "consent"})
    segments = list(Segment.objects.filter(workspace=workspace).order_by("name").values_list("pk", "name"))
    if segments:
        items.append(
            {
                "id": "segment",
                "facet": "segments",
                "label": _("Is in the segment"),
                "node": "segment",
                "choices": [[str(pk), name] for pk, name in segments],
            }
        )
    for key, family in criteria().items():
        if family.choices is None:
            continue
        options = family.choices(workspace.pk)
        if options:
            items.append(
                {
                    "id": f"family:{key}",
                    "facet": "scores",
                    "label": str(family.label) if family.label else key,
                    "node": "family",
                    "key": key,
                    "choices": [[json.dumps(leaf, sort_keys=True), str(label)] for label, leaf in options],
                }
            )
    return {
        "facets": [[key, str(label)] for key, label in FACETS],
        "criteria": items,
        "event_types": _pairs(EventType.choices),
        "channels": _pairs(Channel.choices),
        "purposes": _pairs(ConsentPurpose.choices),
        "texts": {key: str(text) for key, text in TEXTS.items()},
    }


# --- values from the workspace's data ---------------------------------------------------------


def field_values(*, workspace_id: int, field: str) -> list[tuple[str, int]]:
    """The distinct values of a profile field in the workspace, with how many people have each,
    most common first (cached a few minutes: they feed type-ahead and hints, not counts)."""
    if field not in SUGGESTED_FIELDS:
        return []
    key = f"cible:segments:values:{workspace_id}:{field}"
    values = cache.get(key)
    if values is None and field.startswith("item."):
        values = _item_values(workspace_id, field[len("item.") :])
        cache.set(key, values, SUGGESTION_TTL)
    if values is None:
        rows = (
            Profile.objects.filter(workspace_id=workspace_id)
            .exclude(**{field: ""})
            .values_list(field)
            .annotate(n=Count("*"))
            .order_by("-n", field)
        )
        values = [(value, n) for value, n in rows]
        cache.set(key, values, SUGGESTION_TTL)
    return values


def _item_values(workspace_id: int, member: str) -> list[tuple[str, int]]:
    """Categories or products (sku) of the line items ordered over the last year, with how many
    people bought each, most bought first (one pass over those orders' items)."""
    value = json_member("it.value", member)
    sql = (
        f"SELECT {value} AS v, count(DISTINCT o.profile_id) AS n FROM customers_order o "
        f"{json_elements('o.items', 'it')} WHERE o.workspace_id = %s AND o.ordered_at >= %s "
        f"AND {value} IS NOT NULL GROUP BY {value} ORDER BY n DESC, v LIMIT 2000"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [workspace_id, timezone.now() - timedelta(days=ITEM_WINDOW_DAYS)])
        return [(str(v), n) for v, n in cursor.fetchall() if str(v).strip()]


def value_suggestions(*, workspace: Workspace, field: str, query: str) -> list[dict[str, Any]]:
    """Values of `field` that start with (then contain) what was typed, accents and case aside."""
    typed = fold(query)
    folded = [(fold(v), v, n) for v, n in field_values(workspace_id=workspace.pk, field=field)]
    starts = [(v, n) for f, v, n in folded if f.startswith(typed)]
    contains = [(v, n) for f, v, n in folded if typed and typed in f and not f.startswith(typed)]
    return [{"value": v, "count": n} for v, n in (starts + contains)[:MAX_SUGGESTIONS]]


def definition_hints(*, workspace: Workspace, definition: Any) -> list[str]:
    """For each place name in the rules that no profile has (accents and case aside), the values
    it was probably meant to be."""
    hints: list[str] = []
    known_by_field: dict[str, dict[str, str]] = {}
    for node in _leaves(definition):
        name = node.get("field")
        if name not in FOLDED_FIELDS or node.get("op") not in ("eq", "in"):
            continue
        typed = node.get("value")
        for value in typed if isinstance(typed, list) else [typed]:
            if not isinstance(value, str):
                continue
            if name not in known_by_field:
                known_by_field[name] = {fold(v): v for v, _n in field_values(workspace_id=workspace.pk, field=name)}
            known = known_by_field[name]
            if fold(value) in known:
                continue
            close = difflib.get_close_matches(fold(value), list(known), n=3, cutoff=0.6)
            label = str(FIELD_LABELS[name]).lower()
            if close:
                hints.append(
                    _("No profile has the %(field)s “%(value)s”; did you mean %(options)s?")
                    % {"field": label, "value": value, "options": _or([_("“%s”") % known[c] for c in close])}
                )
            else:
                hints.append(_("No profile has the %(field)s “%(value)s”.") % {"field": label, "value": value})
    return hints


def _leaves(node: Any) -> Iterable[dict]:
    if not isinstance(node, dict):
        return
    for key in ("all", "any"):
        if isinstance(node.get(key), list):
            for child in node[key]:
                yield from _leaves(child)
            return
    if "not" in node:
        yield from _leaves(node["not"])
        return
    yield node


# --- the rule as a sentence -------------------------------------------------------------------


def _or(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return _("%(first)s or %(last)s") % {"first": ", ".join(items[:-1]), "last": items[-1]}


def _and(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return _("%(first)s and %(last)s") % {"first": ", ".join(items[:-1]), "last": items[-1]}


def _number(value: Any) -> str:
    return number_format(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _days(window: Any) -> str:
    duration = parse_window(window)
    if duration is None:
        return str(window)
    if duration.total_seconds() % 86400 == 0:
        days = int(duration.total_seconds() // 86400)
        return ngettext("in the last day", "in the last %(n)s days", days) % {"n": days}
    hours = int(duration.total_seconds() // 3600)
    return ngettext("in the last hour", "in the last %(n)s hours", hours) % {"n": hours}


def _duration(window: Any) -> str:
    duration = parse_window(window)
    if duration is None:
        return str(window)
    if duration.total_seconds() % 86400 == 0:
        days = int(duration.total_seconds() // 86400)
        return ngettext("%(n)s day", "%(n)s days", days) % {"n": days}
    hours = int(duration.total_seconds() // 3600)
    return ngettext("%(n)s hour", "%(n)s hours", hours) % {"n": hours}


def _comparison_text(comparison: Any, unit: str = "") -> str:
    if not isinstance(comparison, Mapping):
        return str(comparison)
    words = {
        "eq": _("exactly %s"),
        "gt": _("more than %s"),
        "gte": _("at least %s"),
        "lt": _("fewer than %s"),
        "lte": _("at most %s"),
    }
    parts = [words[k] % (_number(v) + unit) for k, v in comparison.items() if k in words]
    return _and(parts)


def _value_label(name: str, value: Any) -> str:
    if name in CHOICE_LABELS:
        labels = dict(CHOICE_LABELS[name].choices)
        return str(labels.get(value, value))
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, str):
        return _("“%s”") % value
    return _number(value)


class Describer:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.labels = dict(AttributeDefinition.objects.filter(workspace=workspace).values_list("key", "label"))
        self._segments: dict[int, str] | None = None
        self._families: dict[str, str] | None = None

    def node(self, node: Any, top: bool = False) -> str:
        if not isinstance(node, dict):
            return "?"
        for key, joiner in (("all", _and), ("any", _or)):
            if isinstance(node.get(key), list):
                parts = [self.node(child) for child in node[key]]
                text = joiner(parts) if len(parts) > 1 else "".join(parts)
                return text if top or len(parts) == 1 else f"({text})"
        if "not" in node:
            return _("not %(condition)s") % {"condition": self.node(node["not"])}
        for key in ("field", "survey", "event", "orders", "geo", "consent", "segment"):
            if key in node:
                return getattr(self, f"_{key}")(node)
        return self._family(node)

    def _field(self, node: dict) -> str:
        name, op, value = str(node.get("field")), str(node.get("op")), node.get("value")
        if isinstance(name, str) and name.startswith("attributes."):
            key = name[len("attributes.") :]
            label = self.labels.get(key, key)
        else:
            label = str(FIELD_LABELS.get(name, name))
        if op == "is_set":
            return (_("%(field)s is known") if value else _("%(field)s is unknown")) % {"field": label}
        if op == "between" and isinstance(value, list) and len(value) == 2:
            return _("%(field)s is between %(low)s and %(high)s") % {
                "field": label,
                "low": _value_label(name, value[0]),
                "high": _value_label(name, value[1]),
            }
        values = value if isinstance(value, list) else [value]
        shown = [_value_label(name, v) for v in values]
        joined = _and(shown) if op == "contains_all" else _or(shown)
        if op == "in":
            op = "eq"
        if op == "not_in":
            op = "ne"
        return f"{label} {OP_LABELS.get(op, op)} {joined}"

    def _survey(self, node: dict) -> str:
        question = f"{node.get('survey')} / {node.get('question')}"
        label = (
            SurveyQuestion.objects.filter(
                workspace=self.workspace, survey=node.get("survey"), question=node.get("question")
            )
            .values_list("label", flat=True)
            .first()
        )
        question = f"“{label or question}”"
        if node.get("op") == "answered":
            return (_("answered %(q)s") if node.get("value") else _("did not answer %(q)s")) % {"q": question}
        value = node.get("value")
        shown = _or([_value_label("", v) for v in (value if isinstance(value, list) else [value])])
        return _("answered %(q)s: %(op)s %(value)s") % {
            "q": question,
            "op": OP_LABELS.get(node["op"], ""),
            "value": shown,
        }

    def _event(self, node: dict) -> str:
        kind = node.get("event")
        labels = dict(EventType.choices)
        if kind == "any":
            text = _("did anything")
        else:
            text = _("did “%(event)s”") % {"event": str(labels.get(str(kind), kind)).lower()}
        if node.get("channel"):
            text += " " + _("on %(channel)s") % {
                "channel": str(dict(Channel.choices).get(node["channel"], node["channel"]))
            }
        properties = node.get("properties")
        if isinstance(properties, Mapping) and properties:
            text += " " + _("with %(properties)s") % {
                "properties": _and([f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in properties.items()])
            }
        text += self._when(node)
        if isinstance(node.get("count"), Mapping):
            text += ", " + _("%(count)s times") % {"count": _comparison_text(node["count"])}
        return text

    def _when(self, spec: Mapping) -> str:
        if spec.get("within"):
            return " " + _days(spec["within"])
        if spec.get("after"):
            return " " + _("after %(d)s") % {"d": spec["after"]}
        if spec.get("before"):
            return " " + _("before %(d)s") % {"d": spec["before"]}
        if isinstance(spec.get("between"), list) and len(spec["between"]) == 2:
            return " " + _("between %(a)s and %(b)s") % {"a": spec["between"][0], "b": spec["between"][1]}
        for key, word in (("last", _("last time")), ("first", _("first time"))):
            inner = spec.get(key)
            if isinstance(inner, Mapping):
                if inner.get("older_than"):
                    return ", " + _("%(which)s more than %(ago)s ago") % {
                        "which": word,
                        "ago": _duration(inner["older_than"]),
                    }
                return ", " + f"{word}{self._when(inner)}"
        return ""

    def _orders(self, node: dict) -> str:
        spec: Mapping[str, Any] = node["orders"] if isinstance(node.get("orders"), Mapping) else {}
        parts = []
        if isinstance(spec.get("count"), Mapping):
            parts.append(_("%(count)s orders") % {"count": _comparison_text(spec["count"])})
        for key, label in (
            ("amount_sum", _("spent %(amount)s in all")),
            ("amount_avg", _("spent %(amount)s per order on average")),
            ("amount_max", _("spent %(amount)s on one order")),
        ):
            if isinstance(spec.get(key), Mapping):
                parts.append(label % {"amount": _comparison_text(spec[key], f" {self.workspace.currency}")})
        if isinstance(spec.get("items"), Mapping):
            items = spec["items"]
            keys = {"category": _("category"), "sku": _("product (SKU)")}
            what = [
                f"{keys.get(k, k)} {_or([_value_label('', one) for one in (v if isinstance(v, list) else [v])])}"
                for k, v in items.items()
                if k in keys
            ]
            if isinstance(items.get("quantity"), Mapping):
                what.append(_("%(count)s units") % {"count": _comparison_text(items["quantity"])})
            parts.append(_("bought %(what)s") % {"what": _and(what) or "…"})
        text = _and(parts) if parts else _("ordered")
        return text + self._when(spec)

    def _geo(self, node: dict) -> str:
        spec: Mapping[str, Any] = node["geo"] if isinstance(node.get("geo"), Mapping) else {}
        near: list[Any] = spec["near"] if isinstance(spec.get("near"), list) else ["?", "?"]
        return _("lives within %(km)s km of %(lat)s, %(lng)s") % {
            "km": _number(spec.get("km")),
            "lat": _number(near[0]),
            "lng": _number(near[1] if len(near) > 1 else "?"),
        }

    def _consent(self, node: dict) -> str:
        spec: Mapping[str, Any] = node["consent"] if isinstance(node.get("consent"), Mapping) else {}
        purpose = str(dict(ConsentPurpose.choices).get(str(spec.get("purpose")), spec.get("purpose"))).lower()
        if spec.get("channel"):
            channel = str(dict(Channel.choices).get(spec["channel"], spec["channel"]))
            return _("agreed to %(purpose)s by %(channel)s") % {"purpose": purpose, "channel": channel}
        return _("agreed to %(purpose)s") % {"purpose": purpose}

    def _segment(self, node: dict) -> str:
        if self._segments is None:
            self._segments = dict(Segment.objects.filter(workspace=self.workspace).values_list("pk", "name"))
        ref = node.get("segment")
        name = self._segments.get(ref, f"#{ref}") if isinstance(ref, int) else f"#{ref}"
        return _("is in the segment “%(name)s”") % {"name": name}

    def _family(self, node: dict) -> str:
        for key, family in criteria().items():
            if key in node:
                if family.choices is not None:
                    for label, leaf in family.choices(self.workspace.pk):
                        if leaf == node:
                            return f"{family.label}: {label}"
                return f"{family.label or key}: {json.dumps(node[key], ensure_ascii=False)}"
        return json.dumps(node, ensure_ascii=False)


def describe(*, workspace: Workspace, definition: Any) -> str:
    """The rule as a sentence in the user's language, e.g. "Age is between 25 and 34 and did
    “cart abandoned” in the last 30 days"."""
    if definition is None:
        return _("Everyone in the workspace.")
    text = Describer(workspace).node(definition, top=True)
    return text[:1].upper() + text[1:]
