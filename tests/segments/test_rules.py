import pytest
from django.core.exceptions import ValidationError

from segments.rules import validate_definition

TYPES = {"interests": "string_list", "household_size": "number", "vip": "boolean", "joined": "date", "tier": "string"}


def errors(definition):
    with pytest.raises(ValidationError) as info:
        validate_definition(definition, attribute_types=TYPES)
    return info.value.message_dict["definition"]


def test_a_full_definition_of_every_family_is_valid_and_returns_its_segment_references():
    definition = {
        "all": [
            {"field": "age", "op": "between", "value": [25, 34]},
            {"field": "gender", "op": "in", "value": ["female", "other"]},
            {"field": "socio_professional_category", "op": "eq", "value": "executive"},
            {"field": "city", "op": "eq", "value": "Lyon"},
            {"field": "postal_code", "op": "starts_with", "value": ["69", "38"]},
            {"field": "region", "op": "in", "value": ["Bretagne"]},
            {"field": "country", "op": "eq", "value": "FR"},
            {"geo": {"near": [45.76, 4.84], "km": 10}},
            {"field": "attributes.interests", "op": "contains_any", "value": ["running", "cycling"]},
            {"field": "attributes.household_size", "op": "gte", "value": 3},
            {"field": "attributes.vip", "op": "eq", "value": True},
            {"field": "attributes.joined", "op": "after", "value": "2024-01-01"},
            {"survey": "nps", "question": "score", "op": "gte", "value": 9},
            {
                "event": "cart_abandoned",
                "channel": "web",
                "properties": {"category": "shoes"},
                "within": "P1D",
                "count": {"gte": 1},
            },
            {"event": "purchase", "last": {"older_than": "P90D"}},
            {"event": "app_open", "first": {"within": "P30D"}},
            {"orders": {"within": "P90D", "count": {"gte": 3}, "amount_sum": {"gte": 200}, "amount_avg": {"gt": 40}}},
            {"consent": {"purpose": "direct_marketing", "channel": "email"}},
            {"any": [{"segment": 17}, {"not": {"segment": 4}}]},
        ]
    }
    assert validate_definition(definition, attribute_types=TYPES) == {17, 4}


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"all": [{"field": "age", "op": "gte", "value": "thirty"}]}, "definition.all[0].value: expected a number."),
        (
            {"all": [{"field": "age", "op": "between", "value": [40, 30]}]},
            "definition.all[0].value: the low bound is above the high bound.",
        ),
        (
            {"all": [{"field": "shoe_size", "op": "eq", "value": 42}]},
            'definition.all[0].field: unknown field "shoe_size"',
        ),
        ({"all": [{"field": "age", "op": "like", "value": 3}]}, 'definition.all[0].op: "like" does not apply to age'),
        (
            {"any": [{"field": "gender", "op": "eq", "value": "robot"}]},
            'definition.any[0].value: "robot" is not one of',
        ),
        ({"not": {"event": "teleport"}}, 'definition.not.event: unknown event type "teleport".'),
        (
            {"all": [{"event": "purchase", "within": "1 day"}]},
            "definition.all[0].within: expected an ISO 8601 duration",
        ),
        ({"all": [{"event": "purchase", "count": {"most": 3}}]}, "definition.all[0].count.most: unknown comparison"),
        (
            {"all": [{"orders": {"count": {"gte": -1}}}]},
            "definition.all[0].orders.count.gte: expected a number of at least 0.",
        ),
        ({"all": [{"geo": {"near": [95, 4], "km": 10}}]}, "definition.all[0].geo.near: latitude must be within"),
        (
            {"all": [{"field": "attributes.unknown", "op": "eq", "value": 1}]},
            'definition.all[0].field: unknown attribute "unknown".',
        ),
        (
            {"all": [{"field": "attributes.interests", "op": "gte", "value": 1}]},
            'definition.all[0].op: "gte" does not apply',
        ),
        (
            {"all": [{"consent": {"purpose": "spam", "channel": "email"}}]},
            'definition.all[0].consent.purpose: unknown purpose "spam".',
        ),
        ({"all": [{"segment": "vip"}]}, "definition.all[0].segment: expected a segment id."),
        (
            {"all": [{"field": "age", "op": "eq", "value": 3, "colour": "red"}]},
            "definition.all[0].colour: unknown key.",
        ),
        ({"all": []}, "definition.all: expected a non-empty list of conditions."),
        ({"wat": 1}, "definition: unknown condition"),
        ([1, 2], "definition: expected a condition object."),
        (
            {"all": [{"event": "purchase", "first": {"within": "P1D"}, "count": {"gte": 2}}]},
            "definition.all[0]: use either count with a period (within, after, before, between), or one of first/last.",
        ),
    ],
)
def test_each_bad_node_is_named_by_its_path(definition, message):
    assert any(error.startswith(message) for error in errors(definition)), errors(definition)


def test_every_problem_is_reported_at_once():
    found = errors(
        {"all": [{"field": "age", "op": "gte", "value": "x"}, {"event": "nope"}, {"geo": {"near": [0, 0], "km": 0}}]}
    )
    assert len(found) == 3


def test_nesting_is_bounded():
    node = {"field": "age", "op": "gte", "value": 1}
    for _ in range(20):
        node = {"not": node}
    assert any("nested too deeply" in e for e in errors(node))
