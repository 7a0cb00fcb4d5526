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
    assert rows[("region", "Auvergne-Rhone-Alpes")]["index"] == pytest.approx(333.33)
    assert rows[("gender", "male")]["over_represented"] is False
    suggestion = marketer.get(url("segment-suggestion")).json()
    assert suggestion["definition"]["any"]
    assert {c["criterion"] for c in suggestion["criteria"]} >= {"interest", "region"}
    assert suggestion["reach"] == 1.0 and suggestion["size"] >= 30


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
