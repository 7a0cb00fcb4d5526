"""Exact money comparisons, absolute periods, first orders, line items and evaluation "as of" a
past moment, on hand-built data whose answers are known."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from customers.models import Profile
from segments.compiler import compile_definition
from segments.rules import validate_definition
from segments.selectors import compile_context
from segments.services import segment_create
from tests.factories import make_event, make_order, make_profile

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def members(workspace, definition, *, now=NOW, as_of=None):
    validate_definition(definition, attribute_types={})
    ctx = compile_context(workspace=workspace, now=now, as_of=as_of)
    qs = Profile.objects.filter(workspace=workspace).filter(compile_definition(definition, ctx))
    return set(qs.values_list("external_id", flat=True))


@pytest.fixture
def buyers(workspace):
    """exact: an average of exactly 13.97 written three ways; under/over: a cent either side."""
    exact = make_profile(workspace=workspace, external_id="exact")
    for amount in ("13.96", "13.98", "13.97"):  # sum 41.91 over 3 orders
        make_order(profile=exact, amount=amount, ordered_at=NOW - timedelta(days=3))
    under = make_profile(workspace=workspace, external_id="under")
    for amount in ("13.96", "13.97"):
        make_order(profile=under, amount=amount, ordered_at=NOW - timedelta(days=3))
    over = make_profile(workspace=workspace, external_id="over")
    make_order(profile=over, amount="13.98", ordered_at=NOW - timedelta(days=3))
    tenths = make_profile(workspace=workspace, external_id="tenths")  # 0.10 + 0.20, the classic float trap
    make_order(profile=tenths, amount="0.10", ordered_at=NOW - timedelta(days=3))
    make_order(profile=tenths, amount="0.20", ordered_at=NOW - timedelta(days=3))
    make_profile(workspace=workspace, external_id="never")
    return workspace


@pytest.mark.parametrize(
    "comparison, expected",
    [
        ({"eq": 13.97}, {"exact"}),
        ({"gte": 13.97}, {"exact", "over"}),
        ({"gt": 13.97}, {"over"}),
        ({"lte": 13.97}, {"exact", "under", "tenths"}),
        ({"lt": 13.97}, {"under", "tenths"}),
        ({"gte": 13.965, "lt": 13.975}, {"exact", "under"}),  # 13.965 exactly is "under"'s average
        ({"eq": 0.15}, {"tenths"}),
    ],
)
def test_averages_compare_exactly_at_the_threshold(buyers, comparison, expected):
    assert members(buyers, {"orders": {"amount_avg": comparison}}) == expected


def test_sums_compare_exactly(buyers):
    assert members(buyers, {"orders": {"amount_sum": {"eq": 0.3}}}) == {"tenths"}
    assert members(buyers, {"orders": {"amount_sum": {"eq": 41.91}}}) == {"exact"}
    assert members(buyers, {"orders": {"amount_sum": {"lte": 0.3}}}) == {"tenths", "never"}  # no order: a sum of 0


def test_money_bounds_are_amounts_with_at_most_four_decimals():
    for bound in (13.97001, 1e13, 0.1 + 0.2):
        with pytest.raises(Exception) as error:
            validate_definition({"orders": {"amount_avg": {"gte": bound}}}, attribute_types={})
        assert "at most 4 decimals" in str(error.value)


@pytest.fixture
def march(workspace):
    """Paris time: 00:30 on 1 March is still 28 February in UTC."""
    early = make_profile(workspace=workspace, external_id="early")
    make_event(profile=early, type="store_visit", occurred_at=datetime(2026, 2, 28, 23, 30, tzinfo=UTC))  # 1 March
    late = make_profile(workspace=workspace, external_id="late")
    make_event(profile=late, type="store_visit", occurred_at=datetime(2026, 3, 31, 21, 59, tzinfo=UTC))  # 23:59
    before = make_profile(workspace=workspace, external_id="before")
    make_event(profile=before, type="store_visit", occurred_at=datetime(2026, 2, 28, 22, 59, tzinfo=UTC))  # 28 Feb
    after = make_profile(workspace=workspace, external_id="after")
    make_event(profile=after, type="store_visit", occurred_at=datetime(2026, 3, 31, 22, 0, tzinfo=UTC))  # 1 April
    return workspace


def test_absolute_periods_are_whole_days_of_the_workspace_calendar(march):
    assert members(march, {"event": "store_visit", "between": ["2026-03-01", "2026-03-31"]}) == {"early", "late"}
    assert members(march, {"event": "store_visit", "before": "2026-03-01"}) == {"before"}
    assert members(march, {"event": "store_visit", "after": "2026-03-31"}) == {"after"}
    assert members(march, {"event": "store_visit", "after": "2026-02-28", "before": "2026-04-01"}) == {
        "early",
        "late",
    }
    # Date-times are instants; without an offset they are read in the workspace's zone.
    assert members(march, {"event": "store_visit", "after": "2026-03-31T23:59:30"}) == {"after"}
    assert members(march, {"event": "store_visit", "before": "2026-03-01T00:30:00+01:00"}) == {"before"}
    assert members(
        march, {"event": "store_visit", "between": ["2026-03-01T00:30:00+01:00", "2026-03-31T23:59:00+02:00"]}
    ) == {"early", "late"}
    assert members(march, {"event": "store_visit", "last": {"before": "2026-03-01"}}) == {"before"}
    assert members(march, {"event": "store_visit", "between": ["2026-03-01", "2026-03-31"], "count": {"eq": 0}}) == {
        "before",
        "after",
    }


def test_first_order_and_last_order_over_all_orders(workspace):
    new = make_profile(workspace=workspace, external_id="new")
    make_order(profile=new, ordered_at=datetime(2026, 3, 5, tzinfo=UTC))
    loyal = make_profile(workspace=workspace, external_id="loyal")
    make_order(profile=loyal, ordered_at=datetime(2025, 1, 5, tzinfo=UTC))
    make_order(profile=loyal, ordered_at=datetime(2026, 3, 5, tzinfo=UTC))
    lapsed = make_profile(workspace=workspace, external_id="lapsed")
    make_order(profile=lapsed, ordered_at=datetime(2025, 6, 5, tzinfo=UTC))
    assert members(workspace, {"orders": {"first": {"after": "2026-02-28"}}}) == {"new"}
    assert members(workspace, {"orders": {"first": {"within": "P365D"}}}) == {"new"}
    assert members(workspace, {"orders": {"last": {"before": "2026-01-01"}}}) == {"lapsed"}
    # the first order is the first ever, even when counting only a window
    assert members(workspace, {"orders": {"within": "P180D", "count": {"gte": 1}, "first": {"within": "P180D"}}}) == {
        "new"
    }


def test_order_line_items_by_category_and_sku(workspace):
    def order(profile, days, items, status="completed"):
        make_order(profile=profile, ordered_at=NOW - timedelta(days=days), items=items, status=status)

    runner = make_profile(workspace=workspace, external_id="runner")
    order(
        runner,
        10,
        [{"sku": "S1", "category": "shoes", "quantity": 2}, {"sku": "T1", "category": "tops", "quantity": 5}],
    )
    order(runner, 50, [{"sku": "S2", "category": "shoes", "quantity": 1}])
    once = make_profile(workspace=workspace, external_id="once")
    order(once, 10, [{"sku": "S1", "category": "shoes", "quantity": 2}])
    order(once, 100, [{"sku": "S1", "category": "shoes", "quantity": 5}])  # outside 90 days
    order(once, 5, [{"sku": "S1", "category": "shoes", "quantity": 9}], status="refunded")  # not a purchase
    make_profile(workspace=workspace, external_id="none")
    shoes3 = {"orders": {"within": "P90D", "items": {"category": "shoes", "quantity": {"gte": 3}}}}
    assert members(workspace, shoes3) == {"runner"}
    assert members(workspace, {"orders": {"items": {"category": "shoes", "quantity": {"gte": 3}}}}) == {
        "runner",
        "once",
    }
    assert members(workspace, {"orders": {"within": "P90D", "items": {"sku": ["S1", "S2"]}}}) == {"runner", "once"}
    assert members(workspace, {"orders": {"within": "P90D", "items": {"category": "tops", "quantity": {"eq": 5}}}}) == {
        "runner"
    }
    # "at most 2 pairs of shoes" includes the people who bought none
    assert members(
        workspace, {"orders": {"within": "P90D", "items": {"category": "shoes", "quantity": {"lte": 2}}}}
    ) == {"once", "none"}


def test_as_of_ignores_what_happened_after(workspace):
    ana = make_profile(workspace=workspace, external_id="ana")
    make_event(profile=ana, type="purchase", occurred_at=datetime(2026, 2, 20, tzinfo=UTC))
    bob = make_profile(workspace=workspace, external_id="bob")
    make_event(profile=bob, type="purchase", occurred_at=datetime(2026, 3, 10, tzinfo=UTC))
    make_order(profile=bob, amount="50.00", ordered_at=datetime(2026, 3, 10, tzinfo=UTC))
    first_march = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    assert members(workspace, {"event": "purchase", "within": "P30D"}, as_of=first_march) == {"ana"}
    assert members(workspace, {"event": "purchase", "count": {"eq": 0}}, as_of=first_march) == {"bob"}
    assert members(workspace, {"orders": {"amount_sum": {"gte": 50}}}, as_of=first_march) == set()
    # another segment is its own rules at that moment, not its audience of today
    buyers = segment_create(workspace=workspace, name="Buyers", definition={"event": "purchase"})
    assert members(workspace, {"segment": buyers.pk}, as_of=first_march) == {"ana"}


def test_preview_as_of_through_the_api(viewer, workspace):
    ana = make_profile(workspace=workspace, external_id="ana")
    make_event(profile=ana, type="purchase", occurred_at=datetime(2026, 2, 20, 12, tzinfo=UTC))
    definition = {"event": "purchase", "within": "P7D"}
    url = reverse("segment-preview-definition", kwargs={"workspace": workspace.slug})
    r = viewer.post(url, {"definition": definition, "as_of": "2026-02-25"}, format="json")
    assert r.status_code == 200, r.json()
    assert (r.json()["count"], r.json()["as_of"]) == (1, "2026-02-25T23:59:59.999999+01:00")
    assert viewer.post(url, {"definition": definition}, format="json").json()["count"] == 0
    for bad, code in (
        ("2026-02-30", "invalid"),
        ("yesterday", "invalid"),
        ("2999-01-01", "future"),
        ("3000-01-01", "out_of_range"),
    ):
        r = viewer.post(url, {"definition": definition, "as_of": bad}, format="json")
        assert (r.status_code, r.json()["as_of"][0]["code"]) == (400, code), bad
    segment = segment_create(workspace=workspace, name="Recent buyers", definition=definition)
    detail = reverse("segment-preview", kwargs={"workspace": workspace.slug, "pk": segment.pk})
    assert viewer.get(detail, {"as_of": "2026-02-21T00:00:00Z"}).json()["count"] == 1
    assert viewer.get(detail, {"as_of": "nope"}).status_code == 400


@pytest.mark.parametrize(
    "definition, message",
    [
        ({"event": "purchase", "after": "2026-13-01"}, "definition.after: expected a date (YYYY-MM-DD)"),
        ({"event": "purchase", "between": ["2026-03-31", "2026-03-01"]}, "definition.between: the start is after"),
        ({"event": "purchase", "between": "2026-03-01"}, "definition.between: expected a list of two bounds"),
        ({"orders": {"first": {"after": 20260301}}}, "definition.orders.first.after: expected a date"),
        ({"orders": {"items": {"colour": "red"}}}, "definition.orders.items.colour: unknown key."),
        ({"orders": {"items": {"category": []}}}, "definition.orders.items.category: expected a text"),
        ({"event": "purchase", "after": "2026-03-01", "last": {"within": "P1D"}}, "definition: use either count"),
    ],
)
def test_bad_periods_and_items_are_named(definition, message):
    with pytest.raises(Exception) as error:
        validate_definition(definition, attribute_types={})
    assert message in str(error.value), str(error.value)
