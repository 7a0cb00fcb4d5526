"""Creatives, line items and bid days in the API: every field checked with a clear 400, roles
respected, another workspace's rows out of reach."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from programmatic.models import BidDay, Creative, LineItem
from tests.factories import make_running_campaign

CREATIVE = {
    "name": "Soldes 300x250",
    "width": 300,
    "height": 250,
    "markup": "<a href='{{landing_url}}'><img src='https://maison.example/s.png'></a>",
    "landing_url": "https://maison.example/soldes",
    "advertiser_domain": "maison.example",
    "categories": ["IAB22"],
}


def url(name: str, workspace: str = "maison", **kwargs) -> str:
    return reverse(name, kwargs={"workspace": workspace, **kwargs})


@pytest.fixture
def display_target(workspace):
    return make_running_campaign(workspace=workspace, channels=("display",)).targets.get()


def test_creatives_are_created_checked_and_scoped(marketer, viewer, outsider, workspace, other_workspace):
    creatives = url("creative-list")
    for bad, field in (
        ({**CREATIVE, "width": 0}, "width"),
        ({**CREATIVE, "landing_url": "javascript:alert(1)"}, "landing_url"),
        ({**CREATIVE, "advertiser_domain": "Not A Domain"}, "advertiser_domain"),
        ({**CREATIVE, "categories": ["shopping"]}, "categories"),
        ({**CREATIVE, "categories": "IAB22"}, "categories"),
        ({**CREATIVE, "markup": "x" * 20_001}, "markup"),
        ({**CREATIVE, "colour": "red"}, "colour"),
        ({k: v for k, v in CREATIVE.items() if k != "markup"}, "markup"),
    ):
        r = marketer.post(creatives, bad, format="json")
        assert r.status_code == 400 and field in r.json(), (bad, r.content)
    assert viewer.post(creatives, CREATIVE, format="json").status_code == 403
    r = marketer.post(creatives, CREATIVE, format="json")
    assert r.status_code == 201 and r.json()["categories"] == ["IAB22"], r.content
    assert marketer.post(creatives, CREATIVE, format="json").status_code == 409  # the same name again
    assert viewer.get(creatives).json()["count"] == 1
    assert outsider.get(creatives).status_code == 404
    Creative.objects.create(workspace=other_workspace, **{**CREATIVE, "name": "Theirs"})
    assert outsider.get(url("creative-list", "rival")).json()["count"] == 1
    assert marketer.get(url("creative-detail", pk=Creative.objects.get(name="Theirs").pk)).status_code == 404


def test_line_items_are_created_checked_and_scoped(marketer, workspace, other_workspace, display_target):
    creative = Creative.objects.create(workspace=workspace, **CREATIVE)
    theirs = Creative.objects.create(workspace=other_workspace, **CREATIVE)
    foreign_target = make_running_campaign(workspace=other_workspace, channels=("display",)).targets.get()
    email_target = make_running_campaign(workspace=workspace, channels=("email",)).targets.get()
    good = {
        "target": display_target.pk,
        "base_cpm": "2.5",
        "min_cpm": "1",
        "max_cpm": "6",
        "cap_impressions": 3,
        "cap_hours": 24,
        "dayparts": [[8, 12], [18, 23]],
        "weekdays": [0, 1, 2, 3, 4],
        "area": {"countries": ["FRA"], "circles": [{"lat": 48.85, "lon": 2.35, "km": 10}]},
        "inventory": ["site"],
        "creatives": [creative.pk],
    }
    items = url("line-item-list")
    for bad, field, code in (
        ({**good, "target": foreign_target.pk}, "target", "does_not_exist"),
        ({**good, "target": email_target.pk}, "target", "not_display"),
        ({**good, "creatives": [theirs.pk]}, "creatives", "does_not_exist"),
        ({**good, "min_cpm": "7"}, "min_cpm", "min_above_max"),
        ({**good, "base_cpm": "0"}, "base_cpm", "min_value"),
        ({**good, "cap_hours": None}, "cap_hours", "cap_incomplete"),
        ({**good, "dayparts": [[12, 8]]}, "dayparts", "dayparts"),
        ({**good, "dayparts": [[8, 25]]}, "dayparts", "max_value"),
        ({**good, "weekdays": [1, 1]}, "weekdays", "not_unique"),
        ({**good, "area": {"countries": ["FR"]}}, "area", "invalid"),
        ({**good, "area": {"circles": [{"lat": 95, "lon": 2, "km": 10}]}}, "area", "max_value"),
        ({**good, "area": {"planets": ["Mars"]}}, "area", "unknown_field"),
        ({**good, "inventory": ["tv"]}, "inventory", "invalid_choice"),
    ):
        r = marketer.post(items, bad, format="json")
        assert r.status_code == 400 and field in r.json(), (bad, r.content)
        assert code in str(r.json()[field]), (field, r.json())
    assert not LineItem.objects.exists()
    r = marketer.post(items, good, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["creatives"] == [creative.pk] and body["area"]["circles"] == [{"lat": 48.85, "lon": 2.35, "km": 10.0}]
    line = LineItem.objects.get()
    assert line.workspace == workspace and line.base_cpm == Decimal("2.5")
    detail = url("line-item-detail", pk=line.pk)
    r = marketer.patch(detail, {"max_cpm": "0.5"}, format="json")
    assert r.status_code == 400 and "min_cpm" in r.json()  # checked against what it already holds
    assert marketer.patch(detail, {"max_cpm": "8", "creatives": []}, format="json").status_code == 200
    line.refresh_from_db()
    assert line.max_cpm == Decimal(8) and not line.creatives.exists()
    assert marketer.post(items, good, format="json").status_code == 409  # one line item per target


def test_bid_days_report_what_the_bidder_did(viewer, outsider, workspace, other_workspace, display_target):
    line = LineItem.objects.create(target=display_target, base_cpm=2, min_cpm=1, max_cpm=3)
    BidDay.objects.create(
        workspace=workspace,
        line_item=line,
        day=date(2026, 12, 1),
        bids=200,
        wins=50,
        impressions=48,
        losses=150,
        spend_nanos=120_000_000,
    )
    BidDay.objects.create(workspace=workspace, line_item=line, day=date(2026, 12, 2), bids=10)
    days = url("bid-day-list")
    rows = viewer.get(days, {"campaign": display_target.campaign_id, "until": "2026-12-01"}).json()["results"]
    assert rows == [
        {
            "line_item": line.pk,
            "campaign": display_target.campaign_id,
            "day": "2026-12-01",
            "bids": 200,
            "wins": 50,
            "win_rate": 0.25,
            "impressions": 48,
            "losses": 150,
            "spend": "0.120000",
            "ecpm": "2.5000",
        }
    ]
    assert viewer.get(days, {"line_item": "x"}).status_code == 400
    assert outsider.get(url("bid-day-list", "rival")).json()["count"] == 0


def test_bidder_days_say_how_many_requests_and_why_no_bid(viewer, outsider, workspace):
    from programmatic.models import BidderDay

    BidderDay.objects.create(
        workspace=workspace,
        day=date(2026, 12, 1),
        requests=1000,
        bid_requests=250,
        late=3,
        no_bid={"audience": 600, "floor": 147},
    )
    (row,) = viewer.get(url("bidder-day-list")).json()["results"]
    assert row == {
        "day": "2026-12-01",
        "requests": 1000,
        "bid_requests": 250,
        "bid_rate": 0.25,
        "late": 3,
        "no_bid": {"audience": 600, "floor": 147},
    }
    assert viewer.get(url("bidder-day-list"), {"since": "2026-12-02"}).json()["count"] == 0
    assert outsider.get(url("bidder-day-list")).status_code == 404
