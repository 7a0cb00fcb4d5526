"""Keyset pages beside page numbers: profiles, orders and audience members (core.api.PagesOrKeyset)."""

from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from audiences.services import audience_compute
from customers.models import Order, Profile
from segments.services import segment_create
from tests.factories import make_profile

pytestmark = pytest.mark.django_db

API = "/api/workspaces/maison"


@pytest.fixture
def people(workspace, other_workspace):
    for i in range(23):
        profile = make_profile(workspace=workspace, gender="female" if i % 3 else "male", last_name=f"N{i % 5}")
        Order.objects.create(
            workspace=workspace,
            profile=profile,
            order_id=f"o{i}",
            amount=Decimal("10.00"),
            currency="EUR",
            ordered_at=timezone.now(),
            status="completed",
        )
    make_profile(workspace=other_workspace)  # never in a page of ours
    return list(Profile.objects.filter(workspace=workspace).order_by("pk").values_list("pk", flat=True))


def _walk(client, url: str) -> tuple[list[int], list[dict]]:
    ids, answers = [], []
    while url:
        answer = client.get(url)
        assert answer.status_code == 200, answer.content
        body = answer.json()
        answers.append(body)
        ids += [row["id"] for row in body["results"]]
        url = body["next"]
    return ids, answers


def test_a_cursor_walks_every_profile_once_in_order(people, marketer):
    ids, answers = _walk(marketer, f"{API}/profiles/?cursor=&page_size=7")
    assert ids == people
    assert len(answers) == 4
    assert all(set(body) == {"count", "count_exact", "next", "previous", "results"} for body in answers)
    assert answers[0]["count"] == 23 and answers[0]["count_exact"] is True  # few rows: counted
    assert answers[1]["previous"] is not None


def test_a_cursor_keeps_the_filters_and_the_ordering(people, marketer, workspace):
    women = list(
        Profile.objects.filter(workspace=workspace, gender="female").order_by("pk").values_list("pk", flat=True)
    )
    ids, _ = _walk(marketer, f"{API}/profiles/?gender=female&cursor=&page_size=5")
    assert ids == women
    ids, _ = _walk(marketer, f"{API}/profiles/?ordering=-id&cursor=&page_size=4")
    assert ids == people[::-1]
    refused = marketer.get(f"{API}/profiles/?ordering=-last_name&cursor=")
    assert refused.status_code == 400 and "ordering" in refused.json()


def test_page_numbers_answer_as_before(people, marketer):
    body = marketer.get(f"{API}/profiles/?page_size=10&page=3").json()
    assert list(body) == ["count", "next", "previous", "results"]
    assert [row["id"] for row in body["results"]] == people[20:]


def test_orders_and_members_page_by_cursor(people, marketer, workspace):
    orders = list(Order.objects.filter(workspace=workspace).order_by("pk").values_list("pk", flat=True))
    ids, _ = _walk(marketer, f"{API}/orders/?cursor=&page_size=6")
    assert ids == orders
    segment = segment_create(
        workspace=workspace, name="w", definition={"field": "gender", "op": "eq", "value": "female"}
    )
    audience_compute(segment_id=segment.pk)
    women = list(
        Profile.objects.filter(workspace=workspace, gender="female").order_by("pk").values_list("pk", flat=True)
    )
    ids, answers = _walk(marketer, f"{API}/segments/{segment.pk}/members/?cursor=&page_size=4")
    assert ids == women and answers[0]["count"] == len(women)


def test_the_count_is_exact_on_request_and_an_estimate_when_asked(people, marketer):
    exact = marketer.get(f"{API}/profiles/?cursor=&page_size=5&count=exact").json()
    assert exact["count"] == 23 and exact["count_exact"] is True
    estimate = marketer.get(f"{API}/profiles/?cursor=&page_size=5&count=estimate").json()
    if connection.vendor == "postgresql":
        assert estimate["count_exact"] is False and isinstance(estimate["count"], int) and estimate["count"] >= 0
    else:  # no planner estimate to give: counted
        assert estimate == {**estimate, "count": 23, "count_exact": True}


@pytest.mark.parametrize(
    "query", ["cursor=&page=2", "cursor=&count=roughly", "count=-1", "cursor=&page_size=0", "cursor=&page_size=501"]
)
def test_bad_paging_is_a_400_naming_the_parameter(people, marketer, query):
    answer = marketer.get(f"{API}/profiles/?{query}")
    assert answer.status_code == 400
    assert set(answer.json()) & {"cursor", "count", "page_size"}


def test_a_forged_cursor_reaches_nothing(people, marketer, outsider):
    assert marketer.get(f"{API}/profiles/?cursor=bm9wZQ").status_code == 404
    assert outsider.get(f"{API}/profiles/?cursor=").status_code == 404
