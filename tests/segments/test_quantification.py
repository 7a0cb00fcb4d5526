from datetime import timedelta

import pytest
from django.urls import reverse

from audiences.services import audience_compute
from segments.analysis import Thresholds, index_rows
from segments.services import segment_create
from tests.factories import make_profile


def test_the_index_arithmetic_on_a_hand_checked_example():
    rows = index_rows(
        counts=[("gender", "female", 150, 500), ("gender", "male", 50, 500), ("region", "Bretagne", 30, 50)],
        segment_size=200,
        base_size=1000,
        thresholds=Thresholds(),
    )
    by_value = {row.value: row for row in rows}
    female, male, bretagne = by_value["female"], by_value["male"], by_value["Bretagne"]
    # p_seg = 150/200 = 0.75, p_base = 0.5, index = 150, z = 0.25 / sqrt(0.25/200) = 7.071, excess = 150 - 100 = 50
    assert (female.p_seg, female.p_base, female.index, female.z, female.excess, female.over_represented) == (
        0.75,
        0.5,
        150.0,
        7.071,
        50.0,
        True,
    )
    assert (male.index, male.z, male.excess, male.over_represented) == (50.0, -7.071, -50.0, False)
    # index 300 and z 6.489, but 30 members only: not enough volume
    assert (bretagne.index, bretagne.z, bretagne.excess, bretagne.over_represented) == (300.0, 6.489, 20.0, False)
    assert rows[0] is female  # over-represented first, then by excess
    assert [
        r.value
        for r in index_rows(
            counts=[("region", "Bretagne", 30, 50)],
            segment_size=200,
            base_size=1000,
            thresholds=Thresholds(min_count=20),
        )
    ] == ["Bretagne"]


def test_an_empty_base_or_segment_gives_empty_ratios_not_errors():
    (row,) = index_rows(counts=[("gender", "female", 0, 0)], segment_size=0, base_size=0, thresholds=Thresholds())
    assert (row.index, row.z, row.over_represented) == (None, None, False)


@pytest.fixture
def runners(workspace):
    from customers.models import AttributeDefinition

    AttributeDefinition.objects.create(workspace=workspace, key="interests", label="Interests", type="string_list")
    for n in range(30):  # Lyon: mostly women who run
        make_profile(
            workspace=workspace,
            external_id=f"L{n}",
            city="Lyon",
            region="Auvergne-Rhone-Alpes",
            gender="female" if n < 24 else "male",
            attributes={"interests": ["running"] if n < 20 else ["wine"]},
        )
    for n in range(70):
        make_profile(
            workspace=workspace,
            external_id=f"P{n}",
            city="Paris",
            region="Ile-de-France",
            gender="male" if n < 50 else "female",
            attributes={"interests": ["cinema"]},
        )
    segment = segment_create(
        workspace=workspace, name="Lyon", definition={"field": "city", "op": "eq", "value": "Lyon"}
    )
    audience_compute(segment_id=segment.pk)
    return segment


def test_analysis_through_the_api_flags_and_suggests_a_macro_segment(
    marketer, workspace, runners, eager_tasks, django_capture_on_commit_callbacks
):
    url = lambda name: reverse(name, kwargs={"workspace": "maison", "pk": runners.pk})  # noqa: E731
    with django_capture_on_commit_callbacks(execute=True):
        r = marketer.post(url("segment-analyse"), {"min_count": 10}, format="json")
    assert r.status_code == 202
    body = marketer.get(url("segment-analysis")).json()
    assert (body["status"], body["segment_size"], body["base_size"], body["min_count"]) == ("ready", 30, 100, 10)
    rows = {(row["criterion"], row["value"]): row for row in body["rows"]}
    running = rows[("interest", "running")]
    # 20 of 30 in the segment, 20 of 100 in the base: index 333.33
    assert (running["n_seg"], running["n_base"], running["index"], running["over_represented"]) == (
        20,
        20,
        333.33,
        True,
    )
    assert running["label"] == "Interest: running" and running["rule"] == {
        "field": "attributes.interests",
        "op": "contains",
        "value": "running",
    }
    # The segment is a city: its region is 100 % by definition, shown but never a finding.
    region = rows[("region", "Auvergne-Rhone-Alpes")]
    assert (region["index"], region["defining"], region["over_represented"]) == (pytest.approx(333.33), True, False)
    assert body["rows"][-1]["defining"] is True  # defining rows rank last
    assert rows[("gender", "male")]["over_represented"] is False
    assert rows[("gender", "female")]["label"] == "Gender: Female"
    suggestion = marketer.get(url("segment-suggestion")).json()
    assert [c["label"] for c in suggestion["criteria"]] == ["Interest: running", "Gender: Female", "Interest: wine"]
    # running (20 people, all members), women too (44, 24 members), then wine (50: every member): the
    # trade-off, step by step; 50 % of the base is the default limit, reached and not passed.
    first, second, third = suggestion["steps"]
    assert (first["size"], first["precision"], first["coverage"], first["index"]) == (20, 1.0, 0.666667, 333.33)
    assert (second["size"], second["precision"], second["coverage"]) == (44, 0.545455, 0.8)
    assert (third["size"], third["precision"], third["coverage"], third["index"]) == (50, 0.6, 1.0, 200.0)
    assert (suggestion["size"], suggestion["share"], suggestion["reach"]) == (50, 0.5, 1.0)
    # Capped at 30 % of the base, the women are left out, and the answer says so.
    capped = marketer.get(url("segment-suggestion"), {"max_share": "0.3"}).json()
    assert capped["size"] == 30 and capped["reason"] == "Left out, past 30% of the base: Gender: Female."
    nothing = marketer.get(url("segment-suggestion"), {"max_share": "0.05"}).json()
    assert nothing["definition"] is None and "that is not a segment" in nothing["reason"]
    assert marketer.get(url("segment-suggestion"), {"max_share": "2"}).status_code == 400


def test_transactional_behavioural_and_survey_facets_and_why_a_table_is_empty(
    marketer, workspace, runners, eager_tasks, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    from customers.models import Profile
    from customers.services import survey_response_create
    from tests.factories import make_event, make_order

    now = timezone.now()
    for profile in Profile.objects.filter(external_id__startswith="L")[:12]:
        for days in (3, 40, 100):
            make_order(profile=profile, amount="80.00", ordered_at=now - timedelta(days=days))
        make_event(profile=profile, type="store_visit", channel="store", occurred_at=now - timedelta(days=2))
        survey_response_create(profile=profile, survey="nps", question="score", answer=10, answered_at=now)
    url = lambda name: reverse(name, kwargs={"workspace": "maison", "pk": runners.pk})  # noqa: E731
    with django_capture_on_commit_callbacks(execute=True):
        marketer.post(url("segment-analyse"), {"min_count": 10}, format="json")
    rows = {(row["criterion"], row["value"]): row for row in marketer.get(url("segment-analysis")).json()["rows"]}
    # 12 of 30 members against 12 of 100 in the base: index 333.33 in each facet
    for key in (
        ("orders_365d", "2-3"),
        ("spend_365d", "200-500"),
        ("basket_365d", "60-100"),
        ("last_order", "<30 days"),
    ):
        assert (rows[key]["n_seg"], rows[key]["n_base"], rows[key]["index"]) == (12, 12, 333.33), key
    assert rows[("orders_365d", "0")]["n_base"] == 88 and rows[("last_order", "never")]["n_base"] == 88
    assert rows[("event_90d", "store_visit")]["label"] == "Did (90 days): Store visit"
    answer = '{"survey": "nps", "question": "score", "answer": 10}'
    assert rows[("survey", answer)]["label"] == "nps.score: 10"
    assert rows[("survey", answer)]["rule"] == {"survey": "nps", "question": "score", "op": "eq", "value": 10}
    assert rows[("basket_365d", "60-100")]["rule"] == {
        "orders": {"within": "P365D", "amount_avg": {"gte": 60, "lt": 100}}
    }
    # A segment smaller than the minimum count: the table says why nothing stands out.
    with django_capture_on_commit_callbacks(execute=True):
        marketer.post(url("segment-analyse"), {"min_count": 50}, format="json")
    body = marketer.get(url("segment-analysis")).json()
    assert "fewer than the minimum count (50)" in body["empty_reason"]


def test_overlap_and_jaccard(marketer, workspace, runners):
    women = segment_create(
        workspace=workspace, name="Women", definition={"field": "gender", "op": "eq", "value": "female"}
    )
    audience_compute(segment_id=women.pk)
    body = marketer.get(
        reverse("segment-overlap", kwargs={"workspace": "maison", "pk": runners.pk}), {"other": women.pk}
    ).json()
    # Lyon 30, women 24 + 20 = 44, both 24: Jaccard 24 / 50
    assert (body["segment_size"], body["other_size"], body["both"], body["jaccard"]) == (30, 44, 24, 0.48)
    r = marketer.get(reverse("segment-overlap", kwargs={"workspace": "maison", "pk": runners.pk}), {"other": "x"})
    assert r.status_code == 400


def test_analysis_of_another_workspace_is_404(outsider, runners):
    for name in ("segment-analysis", "segment-suggestion", "segment-overlap"):
        assert outsider.get(reverse(name, kwargs={"workspace": "rival", "pk": runners.pk})).status_code == 404
    assert outsider.post(reverse("segment-analyse", kwargs={"workspace": "rival", "pk": runners.pk})).status_code == 404
