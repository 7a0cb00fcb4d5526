"""RFM: quintile scores with ties, named segments all reachable, and real data (CDNOW) scored
exactly as an independent computation (pandas) scores it."""

from datetime import datetime

import pandas as pd
import pytest
from django.db import connection

from insights.models import RfmScore, RfmSegment
from insights.rfm import DEFAULT_SEGMENTS, reachability, rfm_compute, rfm_segments, rfm_segments_apply
from segments.compiler import segment_queryset
from segments.selectors import compile_context
from tests.factories import make_order, make_profile
from tests.insights.data import UTC, cdnow_rows, load_cdnow

pytestmark = pytest.mark.django_db


def test_every_named_segment_is_reachable_and_every_cell_has_one(workspace):
    segments = rfm_segments(workspace=workspace)
    assert [s.code for s in segments] == [code for code, *_ in DEFAULT_SEGMENTS]
    won = reachability(segments)
    assert won.pop("") == 0, "every (R, F, M) combination has a named segment"
    assert all(cells > 0 for cells in won.values()), won
    assert sum(won.values()) == 125


def test_the_commonly_copied_order_leaves_segments_unreachable(workspace):
    """The order that circulates (Potential loyalist before New, At risk before Can't lose them)
    is what the default order fixes: the check finds its dead segments."""
    copied = [
        ("champions", (4, 5), (4, 5), (4, 5)),
        ("loyal", (2, 5), (3, 5), (3, 5)),
        ("potential_loyalist", (3, 5), (1, 3), (1, 3)),
        ("new", (4, 5), (1, 1), (1, 1)),
        ("promising", (3, 4), (1, 1), (1, 1)),
        ("need_attention", (2, 3), (2, 3), (2, 3)),
        ("about_to_sleep", (2, 3), (1, 2), (1, 2)),
        ("at_risk", (1, 2), (2, 5), (2, 5)),
        ("cant_lose_them", (1, 1), (4, 5), (4, 5)),
        ("lost", (1, 2), (1, 2), (1, 2)),
    ]
    segments = [
        RfmSegment(code=code, position=i, r_min=r[0], r_max=r[1], f_min=f[0], f_max=f[1], m_min=m[0], m_max=m[1])
        for i, (code, r, f, m) in enumerate(copied)
    ]
    won = reachability(segments)
    assert won["new"] == won["promising"] == won["cant_lose_them"] == 0


def test_ties_get_equal_scores_and_the_boundary_rule_holds(workspace):
    as_of = datetime(2026, 6, 1, tzinfo=UTC)
    # Ten customers: six with one order of 10.00 on the same day, four with more.
    for _ in range(6):
        make_order(
            profile=make_profile(workspace=workspace), amount="10.00", ordered_at=datetime(2026, 5, 1, tzinfo=UTC)
        )
    for i in range(4):
        profile = make_profile(workspace=workspace)
        for _ in range(i + 2):
            make_order(profile=profile, amount=f"{20 + i}.00", ordered_at=datetime(2026, 5, 20 + i, tzinfo=UTC))
    run = rfm_compute(workspace=workspace, as_of=as_of)
    scores = list(RfmScore.objects.filter(run=run).values_list("frequency", "f", "r", "m"))
    assert run.customers == 10
    ones = {(f, r, m) for frequency, f, r, m in scores if frequency == 1}
    assert ones == {(1, 1, 1)}, "six identical customers, one score"
    # The four others start at rank 7 of 10: 1 + 5 x 6 // 10 = 4, then 4, 5, 5.
    assert sorted(f for frequency, f, _, _ in scores if frequency > 1) == [4, 4, 5, 5]
    assert run.boundaries["f"][0] == {"score": 1, "from": 1, "to": 1, "customers": 6}


def _independent(rows, as_of: datetime) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer", "day", "amount"])
    frame["amount"] = frame["amount"].astype(str).map(lambda a: int(a.replace(".", "")))  # exact cents
    per = frame.groupby("customer").agg(last=("day", "max"), frequency=("day", "size"), monetary=("amount", "sum"))
    per["recency"] = (as_of - per["last"]).dt.days
    n = len(per)

    def score(series: pd.Series) -> pd.Series:
        rank = series.rank(method="min").astype(int)
        return 1 + (5 * (rank - 1)) // n

    per["r"] = score(-per["recency"])
    per["f"] = score(per["frequency"])
    per["m"] = score(per["monetary"])
    return per


def test_cdnow_scores_equal_an_independent_computation(workspace):
    """CDNOW (Fader & Hardie's CD retailer, 1997-1998, as shipped by the lifetimes package):
    every customer's R, F and M equal pandas' computation of the same definition. On SQLite a
    part of the file, on PostgreSQL all of it."""
    limit = None if connection.vendor == "postgresql" else 3000
    rows = cdnow_rows(limit_customers=limit)
    ids = load_cdnow(workspace, rows)
    as_of = datetime(1998, 7, 1, tzinfo=UTC)
    run = rfm_compute(workspace=workspace, as_of=as_of)
    expected = _independent(rows, as_of)
    got = pd.DataFrame(
        list(RfmScore.objects.filter(run=run).values("profile_id", "recency_days", "frequency", "r", "f", "m"))
    )
    back = {pk: c for c, pk in ids.items()}
    got["customer"] = got["profile_id"].map(back)
    got = got.set_index("customer").sort_index()
    assert len(got) == len(expected) == len({c for c, _, _ in rows})
    assert (got["recency_days"] == expected["recency"]).all()
    assert (got["frequency"] == expected["frequency"]).all()
    for score in ("r", "f", "m"):
        assert (got[score] == expected[score]).all(), score
    # About half the customers bought once: they all share F = 1.
    once = expected["frequency"] == 1
    assert once.mean() > 0.4 and set(got.loc[once, "f"]) == {1}


def test_rules_select_by_segment_and_score_and_edits_reassign(workspace):
    as_of = datetime(2026, 6, 1, tzinfo=UTC)
    for i in range(20):
        profile = make_profile(workspace=workspace)
        for _ in range(1 + i % 5):
            make_order(profile=profile, amount=f"{10 + i}.00", ordered_at=datetime(2026, 1 + i % 5, 1, tzinfo=UTC))
    run = rfm_compute(workspace=workspace, as_of=as_of)
    ctx = compile_context(workspace=workspace)
    champions = set(RfmScore.objects.filter(run=run, segment="champions").values_list("profile_id", flat=True))
    assert champions
    assert set(segment_queryset({"rfm": {"segment": "champions"}}, ctx).values_list("pk", flat=True)) == champions
    r4 = set(RfmScore.objects.filter(run=run, r__gte=4, f__lte=2).values_list("profile_id", flat=True))
    assert set(segment_queryset({"rfm": {"r": {"gte": 4}, "f": {"lte": 2}}}, ctx).values_list("pk", flat=True)) == r4
    # Editing the definitions re-assigns the current run at once.
    RfmSegment.objects.filter(workspace=workspace, code="champions").update(r_min=5, f_min=5, m_min=5)
    rfm_segments_apply(workspace=workspace)
    narrowed = set(RfmScore.objects.filter(run=run, segment="champions").values_list("profile_id", flat=True))
    assert narrowed < champions
    # A second run records who moved between segments.
    make_order(profile=make_profile(workspace=workspace), amount="99.00", ordered_at=datetime(2026, 6, 1, tzinfo=UTC))
    second = rfm_compute(workspace=workspace, as_of=datetime(2026, 9, 1, tzinfo=UTC))
    assert second.previous_id == run.pk
    assert sum(row["customers"] for row in second.migration) == 21
    assert any(row["from"] == "(none)" for row in second.migration)
