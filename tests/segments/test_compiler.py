"""Each criteria family on hand-built profiles: who matches, who does not, and the window edges."""

from datetime import UTC, date, datetime, timedelta

import pytest

from customers.models import AttributeDefinition, Profile, SurveyResponse
from segments.compiler import compile_definition
from segments.selectors import compile_context
from tests.factories import make_consent, make_event, make_order, make_profile

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def members(workspace, definition):
    ctx = compile_context(workspace=workspace, now=NOW)
    qs = Profile.objects.filter(workspace=workspace).filter(compile_definition(definition, ctx))
    return set(qs.values_list("external_id", flat=True))


@pytest.fixture
def people(workspace, other_workspace):
    for key, kind in (
        ("interests", "string_list"),
        ("household_size", "number"),
        ("vip", "boolean"),
        ("joined", "date"),
        ("tier", "string"),
    ):
        AttributeDefinition.objects.create(workspace=workspace, key=key, label=key, type=kind)
    make_profile(
        workspace=workspace,
        external_id="ana",
        birth_date=date(2000, 6, 15),
        gender="female",
        socio_professional_category="student",
        city="Lyon",
        postal_code="69003",
        region="Auvergne-Rhone-Alpes",
        country="FR",
        latitude=45.7640,
        longitude=4.8357,
        attributes={
            "interests": ["running", "wine"],
            "household_size": 1,
            "vip": True,
            "joined": "2024-03-01",
            "tier": "gold",
        },
    )
    make_profile(
        workspace=workspace,
        external_id="bob",
        birth_date=date(2000, 6, 16),
        gender="male",
        socio_professional_category="executive",
        city="Villeurbanne",
        postal_code="69100",
        region="Auvergne-Rhone-Alpes",
        country="FR",
        latitude=45.7719,
        longitude=4.8902,
        attributes={"interests": ["cycling"], "household_size": 4, "vip": False, "joined": "2023-01-01"},
    )
    make_profile(
        workspace=workspace,
        external_id="cat",
        birth_date=date(1960, 1, 1),
        gender="female",
        socio_professional_category="retired",
        city="Paris",
        postal_code="75011",
        region="Ile-de-France",
        country="FR",
        latitude=48.8566,
        longitude=2.3522,
        attributes={},
    )
    make_profile(workspace=workspace, external_id="dan")  # knows nothing about dan
    make_profile(workspace=other_workspace, external_id="ana-elsewhere", gender="female", city="Lyon")


def test_demographic_age_boundaries_on_the_birthday(workspace, people):
    # ana turns 26 on NOW's date; bob turns 26 the day after.
    assert members(workspace, {"field": "age", "op": "gte", "value": 26}) == {"ana", "cat"}
    assert members(workspace, {"field": "age", "op": "eq", "value": 25}) == {"bob"}
    assert members(workspace, {"field": "age", "op": "between", "value": [25, 26]}) == {"ana", "bob"}
    assert members(workspace, {"field": "age", "op": "lt", "value": 26}) == {"bob"}
    assert members(workspace, {"field": "age", "op": "is_set", "value": False}) == {"dan"}


def test_demographic_gender_and_category(workspace, people):
    assert members(workspace, {"field": "gender", "op": "eq", "value": "female"}) == {"ana", "cat"}
    assert members(workspace, {"field": "socio_professional_category", "op": "not_in", "value": ["retired"]}) == {
        "ana",
        "bob",
        "dan",
    }


def test_geographic_city_postal_prefix_region_country(workspace, people):
    assert members(workspace, {"field": "city", "op": "eq", "value": "lyon"}) == {"ana"}
    assert members(workspace, {"field": "postal_code", "op": "starts_with", "value": "69"}) == {"ana", "bob"}
    assert members(workspace, {"field": "postal_code", "op": "starts_with", "value": ["75", "13"]}) == {"cat"}
    assert members(workspace, {"field": "region", "op": "ne", "value": "Ile-de-France"}) == {"ana", "bob", "dan"}
    assert members(workspace, {"field": "country", "op": "in", "value": ["FR"]}) == {"ana", "bob", "cat"}


def test_geographic_within_km_of_a_point(workspace, people):
    # Villeurbanne is ~4.4 km from Lyon's centre; Paris is ~390 km away.
    assert members(workspace, {"geo": {"near": [45.7640, 4.8357], "km": 4}}) == {"ana"}
    assert members(workspace, {"geo": {"near": [45.7640, 4.8357], "km": 5}}) == {"ana", "bob"}
    assert members(workspace, {"geo": {"near": [45.7640, 4.8357], "km": 400}}) == {"ana", "bob", "cat"}


def test_attitudinal_attributes_by_type(workspace, people):
    assert members(workspace, {"field": "attributes.interests", "op": "contains", "value": "running"}) == {"ana"}
    assert members(
        workspace, {"field": "attributes.interests", "op": "contains_any", "value": ["running", "cycling"]}
    ) == {"ana", "bob"}
    assert members(
        workspace, {"field": "attributes.interests", "op": "contains_all", "value": ["running", "wine"]}
    ) == {"ana"}
    assert members(workspace, {"field": "attributes.household_size", "op": "gte", "value": 2}) == {"bob"}
    assert members(workspace, {"field": "attributes.vip", "op": "eq", "value": True}) == {"ana"}
    assert members(workspace, {"field": "attributes.joined", "op": "before", "value": "2024-01-01"}) == {"bob"}
    assert members(workspace, {"field": "attributes.tier", "op": "eq", "value": "gold"}) == {"ana"}
    assert members(workspace, {"field": "attributes.interests", "op": "is_set", "value": False}) == {"cat", "dan"}


def test_attitudinal_survey_answers(workspace, people):
    ana, bob = Profile.objects.get(external_id="ana"), Profile.objects.get(external_id="bob")
    for profile, score, channels in ((ana, 9, ["email", "app"]), (bob, 4, ["store"])):
        SurveyResponse.objects.create(
            workspace=workspace, profile=profile, survey="nps", question="score", answer=score, answered_at=NOW
        )
        SurveyResponse.objects.create(
            workspace=workspace, profile=profile, survey="nps", question="channels", answer=channels, answered_at=NOW
        )
    assert members(workspace, {"survey": "nps", "question": "score", "op": "gte", "value": 9}) == {"ana"}
    assert members(workspace, {"survey": "nps", "question": "score", "op": "between", "value": [0, 6]}) == {"bob"}
    assert members(workspace, {"survey": "nps", "question": "channels", "op": "contains", "value": "app"}) == {"ana"}
    assert members(workspace, {"survey": "nps", "question": "score", "op": "answered", "value": False}) == {
        "cat",
        "dan",
    }


def test_behavioural_window_edges_and_counts(workspace, people):
    ana, bob, cat = (Profile.objects.get(external_id=x) for x in ("ana", "bob", "cat"))
    make_event(profile=ana, type="cart_abandoned", occurred_at=NOW - timedelta(hours=24))  # exactly on the edge: in
    make_event(profile=bob, type="cart_abandoned", occurred_at=NOW - timedelta(hours=24, seconds=1))  # just out
    make_event(
        profile=cat,
        type="cart_abandoned",
        occurred_at=NOW - timedelta(hours=1),
        channel="app",
        properties={"category": "shoes"},
    )
    make_event(
        profile=cat, type="cart_abandoned", occurred_at=NOW - timedelta(hours=2), properties={"category": "books"}
    )
    assert members(workspace, {"event": "cart_abandoned", "within": "P1D"}) == {"ana", "cat"}
    assert members(workspace, {"event": "cart_abandoned", "within": "PT24H", "count": {"gte": 2}}) == {"cat"}
    assert members(workspace, {"event": "cart_abandoned", "within": "P1D", "channel": "app"}) == {"cat"}
    assert members(workspace, {"event": "cart_abandoned", "properties": {"category": "books"}}) == {"cat"}
    # "did not do X in the window" includes those who never did it
    assert members(workspace, {"event": "cart_abandoned", "within": "P1D", "count": {"eq": 0}}) == {"bob", "dan"}
    assert members(workspace, {"event": "cart_abandoned", "count": {"lte": 1}}) == {"ana", "bob", "dan"}


def test_behavioural_first_and_last_occurrence(workspace, people):
    ana, bob = Profile.objects.get(external_id="ana"), Profile.objects.get(external_id="bob")
    make_event(profile=ana, type="app_open", occurred_at=NOW - timedelta(days=200))
    make_event(profile=ana, type="app_open", occurred_at=NOW - timedelta(days=2))
    make_event(profile=bob, type="app_open", occurred_at=NOW - timedelta(days=10))
    assert members(workspace, {"event": "app_open", "first": {"within": "P30D"}}) == {"bob"}
    assert members(workspace, {"event": "app_open", "last": {"within": "P7D"}}) == {"ana"}
    assert members(workspace, {"event": "app_open", "last": {"older_than": "P7D"}}) == {"bob"}


def test_transactional_count_sum_average_recency(workspace, people):
    ana, bob, cat = (Profile.objects.get(external_id=x) for x in ("ana", "bob", "cat"))
    for days, amount in ((5, "120.00"), (40, "60.00"), (89, "30.00")):
        make_order(profile=ana, amount=amount, ordered_at=NOW - timedelta(days=days))
    make_order(profile=ana, amount="500.00", ordered_at=NOW - timedelta(days=91))  # outside 90 days
    make_order(profile=ana, amount="900.00", ordered_at=NOW - timedelta(days=1), status="refunded")  # not counted
    make_order(profile=bob, amount="250.00", ordered_at=NOW - timedelta(days=10))
    make_order(profile=cat, amount="15.00", ordered_at=NOW - timedelta(days=300))
    assert members(workspace, {"orders": {"within": "P90D", "count": {"gte": 3}, "amount_sum": {"gte": 200}}}) == {
        "ana"
    }
    assert members(workspace, {"orders": {"within": "P90D", "amount_sum": {"gte": 200}}}) == {"ana", "bob"}
    assert members(workspace, {"orders": {"amount_avg": {"gte": 200}}}) == {"bob"}
    assert members(workspace, {"orders": {"last": {"older_than": "P180D"}}}) == {"cat"}
    # no order in 90 days: count 0 qualifies, people without any order included
    assert members(workspace, {"orders": {"within": "P90D", "count": {"eq": 0}}}) == {"cat", "dan"}


def test_consent_contactable_for_a_purpose_and_channel_at_now(workspace, people):
    ana, bob, cat = (Profile.objects.get(external_id=x) for x in ("ana", "bob", "cat"))
    make_consent(profile=ana, recorded_at=NOW - timedelta(days=10))
    make_consent(profile=bob, recorded_at=NOW - timedelta(days=10))
    make_consent(profile=bob, status="withdrawn", recorded_at=NOW - timedelta(days=1))
    make_consent(profile=cat, recorded_at=NOW + timedelta(days=1))  # after NOW: not yet in force
    assert members(workspace, {"consent": {"purpose": "direct_marketing", "channel": "email"}}) == {"ana"}
    assert members(workspace, {"not": {"consent": {"purpose": "direct_marketing", "channel": "email"}}}) == {
        "bob",
        "cat",
        "dan",
    }


def test_boolean_nesting(workspace, people):
    definition = {
        "any": [
            {"all": [{"field": "gender", "op": "eq", "value": "female"}, {"field": "age", "op": "gte", "value": 60}]},
            {"not": {"field": "country", "op": "is_set", "value": True}},
        ]
    }
    assert members(workspace, definition) == {"cat", "dan"}


def test_manual_members_hold_through_a_segment_of_segments_as_of_a_past_moment(workspace):
    from segments.models import ManualMember
    from segments.selectors import definition_preview, segment_members_query
    from segments.services import manual_members_set, segment_create

    lyon = make_profile(workspace=workspace, external_id="lyon", city="Lyon")
    paris = make_profile(workspace=workspace, external_id="paris", city="Paris")
    other = make_profile(workspace=workspace, external_id="other", city="Lyon")
    city = segment_create(workspace=workspace, name="Lyon", definition={"field": "city", "op": "eq", "value": "Lyon"})
    manual_members_set(segment=city, add=[paris.pk], remove=[other.pk])
    assert ManualMember.objects.filter(segment=city).count() == 2
    ctx = compile_context(workspace=workspace, now=NOW)
    assert set(segment_members_query(segment=city, ctx=ctx).values_list("pk", flat=True)) == {lyon.pk, paris.pk}
    for definition, expected in (
        ({"segment": city.pk}, ["lyon", "paris"]),
        ({"not": {"segment": city.pk}}, ["other"]),
        ({"any": [{"segment": city.pk}, {"field": "city", "op": "eq", "value": "Nice"}]}, ["lyon", "paris"]),
    ):
        shown = definition_preview(workspace=workspace, definition=definition, as_of=NOW)
        assert (shown["count"], [p.external_id for p in shown["sample"]]) == (len(expected), expected)
