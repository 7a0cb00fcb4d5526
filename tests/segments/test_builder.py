"""The segment builder's server side: the catalogue, type-ahead, the sentence, hints, the estimate,
and place names matched whatever their accents and case."""

import pytest
from django.urls import reverse
from django.utils import translation

from core.folding import fold
from customers.models import AttributeDefinition, SurveyQuestion
from segments.selectors import SAMPLE_EVERY, definition_estimate, definition_preview, wilson_interval
from segments.vocabulary import catalogue, describe
from tests.factories import make_profile, make_segment, make_user

IDF = "Île-de-France"


@pytest.fixture(autouse=True)
def fresh_values():
    """The workspace's distinct values are cached a few minutes; each test starts without them."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def marketer(client, workspace):
    client.force_login(make_user(workspace=workspace, role="marketer"))
    return client


def count(workspace, definition) -> int:
    return definition_preview(workspace=workspace, definition=definition)["count"]


def test_fold_drops_case_accents_and_separators():
    assert fold("  Île-de-France ") == fold("ILE DE FRANCE") == fold("ile-de-france") == "ile de france"
    assert fold("Côte-d’Or") == fold("cote d'or") == "cote d or"
    assert fold("Łódź") == "lodz"


def test_place_names_match_whatever_the_accents_and_case(workspace, other_workspace):
    make_profile(workspace=workspace, region=IDF, city="Saint-Étienne")
    make_profile(workspace=workspace, region="Ile-de-France", city="Saint Etienne")
    make_profile(workspace=workspace, region="ILE DE FRANCE", city="Lyon")
    make_profile(workspace=workspace, region="Bretagne", city="Rennes")
    make_profile(workspace=other_workspace, region=IDF)
    assert count(workspace, {"field": "region", "op": "eq", "value": "ile de france"}) == 3
    assert count(workspace, {"field": "region", "op": "eq", "value": "Île-de-France"}) == 3
    assert count(workspace, {"field": "region", "op": "ne", "value": "île-de-france"}) == 1
    assert count(workspace, {"field": "city", "op": "in", "value": ["SAINT-ETIENNE", "rennes"]}) == 3
    assert count(workspace, {"field": "city", "op": "not_in", "value": ["saint étienne"]}) == 2
    # Postal codes stay exact (prefixes use their index).
    make_profile(workspace=workspace, postal_code="69001")
    assert count(workspace, {"field": "postal_code", "op": "starts_with", "value": "69"}) == 1


def test_the_catalogue_offers_the_workspace_criteria_by_facet(workspace, other_workspace):
    AttributeDefinition.objects.create(
        workspace=workspace, key="interests", label="Centres d'intérêt", type="string_list"
    )
    SurveyQuestion.objects.create(workspace=workspace, survey="nps", question="score", label="Would you recommend us?")
    mine = make_segment(workspace=workspace, name="Fidèles", compute=False)
    make_segment(workspace=other_workspace, name="Not yours", compute=False)
    found = catalogue(workspace=workspace)
    by_id = {item["id"]: item for item in found["criteria"]}
    assert {"field:age", "field:region", "event", "orders", "consent", "survey", "segment"} <= set(by_id)
    assert by_id["field:attributes.interests"]["facet"] == "attitudinal"
    assert [op for op, _ in by_id["field:attributes.interests"]["ops"]] == [
        "contains",
        "contains_any",
        "contains_all",
        "is_set",
    ]
    assert by_id["segment"]["choices"] == [[str(mine.pk), "Fidèles"]]
    assert by_id["field:gender"]["choices"][0] == ["female", "Female"]
    assert by_id["survey"]["questions"][0][:3] == ["nps", "score", "Would you recommend us?"]
    assert {facet for facet, _ in found["facets"]} >= {item["facet"] for item in found["criteria"]}
    with translation.override("fr"):
        french = catalogue(workspace=workspace)
    french_by_id = {item["id"]: item for item in french["criteria"]}
    assert french_by_id["field:gender"]["choices"][0] == ["female", "Femme"]
    assert french_by_id["field:age"]["label"] == "Âge"
    assert dict(french["facets"])["behavioural"] == "Ce qu'ils ont fait"


def test_the_sentence_reads_the_rule_back(workspace):
    definition = {
        "all": [
            {"field": "gender", "op": "eq", "value": "female"},
            {"field": "age", "op": "between", "value": [25, 34]},
            {"field": "region", "op": "eq", "value": IDF},
            {"event": "cart_abandoned", "within": "P30D"},
            {"not": {"orders": {"within": "P30D", "count": {"gte": 1}}}},
        ]
    }
    assert describe(workspace=workspace, definition=definition) == (
        "Gender is Female, Age is between 25 and 34, Region is “Île-de-France”, did “cart abandoned” in the "
        "last 30 days and not at least 1 orders in the last 30 days"
    )
    with translation.override("fr"):
        french = describe(workspace=workspace, definition=definition)
    assert french == (
        "Genre est Femme, Âge est entre 25 et 34, Région est « Île-de-France », a fait « panier abandonné » "
        "dans les 30 derniers jours et pas au moins 1 commandes dans les 30 derniers jours"
    )


def test_the_editor_suggests_values_and_hints_at_misspellings(marketer, workspace, other_workspace):
    for _ in range(3):
        make_profile(workspace=workspace, region=IDF)
    make_profile(workspace=workspace, region="Occitanie")
    make_profile(workspace=other_workspace, region="Île-de-Secret")
    url = reverse("admin:segments_segment_values")
    r = marketer.get(url, {"workspace": workspace.pk, "field": "region", "q": "ile"})
    assert r.json() == {"values": [{"value": IDF, "count": 3}]}
    r = marketer.get(url, {"workspace": workspace.pk, "field": "region", "q": "TANIE"})
    assert r.json() == {"values": [{"value": "Occitanie", "count": 1}]}
    assert marketer.get(url, {"workspace": other_workspace.pk, "field": "region", "q": ""}).status_code == 400
    assert marketer.get(url, {"workspace": workspace.pk, "field": "email", "q": "a"}).status_code == 400

    preview = reverse("admin:segments_segment_preview")
    typo = {"field": "region", "op": "eq", "value": "Ile de Franse"}
    r = marketer.post(preview, {"workspace": workspace.pk, "definition": typo}, content_type="application/json")
    assert r.status_code == 200 and r.json()["count"] == 0
    assert r.json()["hints"] == ["No profile has the region “Ile de Franse”; did you mean “Île-de-France”?"]
    right = {"field": "region", "op": "eq", "value": "ile-de-france"}
    r = marketer.post(preview, {"workspace": workspace.pk, "definition": right}, content_type="application/json")
    assert (r.json()["count"], r.json()["hints"], r.json()["sentence"]) == (3, [], "Region is “ile-de-france”")
    r = marketer.get(reverse("admin:segments_segment_catalogue"), {"workspace": other_workspace.pk})
    assert r.status_code == 400


def test_the_estimate_counts_the_fixed_sample_within_its_interval(workspace, settings):
    settings.CIBLE_ESTIMATE_FROM = 100
    people = [make_profile(workspace=workspace, city="Lyon" if n % 3 else "Paris") for n in range(1, 700)]
    definition = {"field": "city", "op": "eq", "value": "Lyon"}
    estimate = definition_estimate(workspace=workspace, definition=definition)
    sampled = [p for p in people if p.pk % SAMPLE_EVERY == 0]
    k = sum(p.city == "Lyon" for p in sampled)
    assert estimate["sampled"] == len(sampled) > 0
    assert estimate["count"] == round(k / len(sampled) * len(people))
    low, high = wilson_interval(k=k, n=len(sampled), population=len(people))
    assert (estimate["low"], estimate["high"]) == (round(low * len(people)), round(high * len(people)))
    exact = count(workspace, definition)
    assert estimate["low"] <= exact <= estimate["high"]
    settings.CIBLE_ESTIMATE_FROM = 10_000
    assert definition_estimate(workspace=workspace, definition=definition) is None


def test_wilson_interval_agrees_with_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    for k, n in ((0, 50), (7, 50), (480, 1000), (1000, 1000)):
        low, high = wilson_interval(k=k, n=n, population=10**15)
        expected = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert low == pytest.approx(expected[0], abs=1e-9) and high == pytest.approx(expected[1], abs=1e-9)
    # Drawing most of a small population leaves little uncertainty.
    narrow = wilson_interval(k=50, n=100, population=110)
    wide = wilson_interval(k=50, n=100, population=10**9)
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 2


def test_text_attributes_match_whatever_the_accents_and_case(workspace):
    AttributeDefinition.objects.create(workspace=workspace, key="tier", label="Niveau", type="string")
    make_profile(workspace=workspace, attributes={"tier": "Privilège"})
    make_profile(workspace=workspace, attributes={"tier": "PRIVILEGE"})
    make_profile(workspace=workspace, attributes={"tier": "Standard"})
    make_profile(workspace=workspace, attributes={})
    assert count(workspace, {"field": "attributes.tier", "op": "eq", "value": "privilege"}) == 2
    assert count(workspace, {"field": "attributes.tier", "op": "in", "value": ["privilège", "standard"]}) == 3
    # Not "privilege": the standard one and the one without a tier, as before.
    assert count(workspace, {"field": "attributes.tier", "op": "ne", "value": "Privilege"}) == 2
    assert count(workspace, {"field": "attributes.tier", "op": "not_in", "value": ["STANDARD"]}) == 3


def test_the_api_offers_the_builder_sentence_estimate_and_values(viewer, outsider, workspace, settings):
    from tests.segments.test_api import url

    for n in range(130):
        make_profile(workspace=workspace, region=IDF if n % 2 else "Bretagne")
    rule = {"field": "region", "op": "eq", "value": "ile de france"}
    r = viewer.post(url("segment-preview-definition"), {"definition": rule}, format="json")
    assert r.status_code == 200 and r.data["count"] == 65
    assert (r.data["sentence"], r.data["hints"]) == ("Region is “ile de france”", [])
    r = viewer.post(
        url("segment-preview-definition"),
        {"definition": {**rule, "value": "Bretagn"}},
        format="json",
        HTTP_ACCEPT_LANGUAGE="fr",
    )
    assert r.data["hints"] == [
        "Aucun profil n’a la valeur « Bretagn » pour : région ; vouliez-vous dire « Bretagne » ?"
    ]

    r = viewer.post(url("segment-estimate"), {"definition": rule}, format="json")
    assert r.status_code == 200
    assert r.data == {
        "estimated": False,
        "count": 65,
        "low": 65,
        "high": 65,
        "base": 130,
        "share": 0.5,
        "sampled": None,
    }
    settings.CIBLE_ESTIMATE_FROM = 100
    r = viewer.post(url("segment-estimate"), {"definition": rule}, format="json")
    assert r.data["estimated"] is True and r.data["low"] <= 65 <= r.data["high"] and r.data["sampled"] >= 1
    r = viewer.post(url("segment-estimate"), {"definition": {"field": "region"}}, format="json")
    assert r.status_code == 400 and "definition" in r.data

    r = viewer.get(url("segment-values"), {"field": "region", "q": "ÎLE"})
    assert r.status_code == 200 and r.data == {"values": [{"value": IDF, "count": 65}]}
    assert viewer.get(url("segment-values"), {"field": "email", "q": "a"}).status_code == 400
    assert viewer.get(url("segment-values"), {"field": "region", "q": "x" * 201}).status_code == 400
    # Another workspace's member sees nothing of this one.
    assert outsider.get(url("segment-values"), {"field": "region"}).status_code in (403, 404)
    assert outsider.post(url("segment-estimate"), {"definition": rule}, format="json").status_code in (403, 404)


def test_categories_and_products_bought_are_suggested(marketer, workspace, other_workspace):
    from tests.factories import make_order

    shoes = {"sku": "RUN-42", "category": "Chaussures", "quantity": 1, "price": "80.00"}
    bag = {"sku": "BAG-1", "category": "Bagagerie", "quantity": 1, "price": "40.00"}
    for n in range(3):
        make_order(profile=make_profile(workspace=workspace), items=[shoes] if n else [shoes, bag])
    make_order(
        profile=make_profile(workspace=other_workspace), items=[{"sku": "SECRET", "category": "Chauss-secrètes"}]
    )
    url = reverse("admin:segments_segment_values")
    r = marketer.get(url, {"workspace": workspace.pk, "field": "item.category", "q": "chau"})
    assert r.json() == {"values": [{"value": "Chaussures", "count": 3}]}
    r = marketer.get(url, {"workspace": workspace.pk, "field": "item.sku", "q": ""})
    assert r.json() == {"values": [{"value": "RUN-42", "count": 3}, {"value": "BAG-1", "count": 1}]}
    assert (
        describe(workspace=workspace, definition={"orders": {"items": {"category": "Chaussures"}, "within": "P365D"}})
        == "Bought category “Chaussures” in the last 365 days"
    )


def test_rule_errors_speak_the_callers_language(viewer):
    from tests.segments.test_api import url

    bad = {"definition": {"all": [{"field": "age", "op": "gte", "value": "trente"}]}}
    r = viewer.post(url("segment-preview-definition"), bad, format="json")
    assert r.status_code == 400 and r.data["definition"][0]["message"] == "definition.all[0].value: expected a number."
    r = viewer.post(url("segment-preview-definition"), bad, format="json", HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9")
    assert r.status_code == 400
    assert r.data["definition"][0] == {
        "message": "definition.all[0].value : un nombre est attendu.",
        "code": "invalid_rule",
    }
