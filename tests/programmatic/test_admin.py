"""Creatives and line items in the admin: each field checked with a clear error, and another
workspace's targets and creatives out of reach."""

from decimal import Decimal

import pytest
from django.urls import reverse

from programmatic.models import BidDay, BidderDay, Creative, LineItem
from tests.factories import make_running_campaign, make_user


@pytest.fixture
def marketer_browser(client, workspace):
    client.force_login(make_user(workspace=workspace, role="marketer"))
    return client


def creative(workspace, name="Soldes") -> Creative:
    return Creative.objects.create(
        workspace=workspace,
        name=name,
        width=300,
        height=250,
        markup="<a href='{{landing_url}}'>Soldes</a>",
        landing_url="https://maison.example/soldes",
        advertiser_domain="maison.example",
    )


def line_form(target, creatives, **overrides) -> dict:
    data = {
        "target": target.pk,
        "base_cpm": "2.5",
        "min_cpm": "1",
        "max_cpm": "6",
        "cap_impressions": "",
        "cap_hours": "",
        "dayparts": "[[8, 12], [18, 23]]",
        "weekdays": "[0, 1, 2, 3, 4]",
        "area": '{"countries": ["FRA"], "circles": [{"lat": 48.85, "lon": 2.35, "km": 10}]}',
        "inventory": '["site"]',
        "trigger_hours": "72",
        "creatives": [c.pk for c in creatives],
    }
    data.update(overrides)
    return data


def test_a_line_item_is_created_and_every_field_is_checked(marketer_browser, workspace, other_workspace):
    campaign = make_running_campaign(workspace=workspace, channels=("display",))
    target = campaign.targets.get()
    ours, theirs = creative(workspace), creative(other_workspace)
    url = reverse("admin:programmatic_lineitem_add")
    for field, value, message in (
        ("dayparts", "[[12, 8]]", "Each part is [start, end) with 0 &lt;= start &lt; end &lt;= 24"),
        ("weekdays", "[7]", "Days of the week, each once"),
        ("area", '{"countries": ["FR"]}', "ISO 3166-1 alpha-3"),
        ("area", '{"planets": ["Mars"]}', "Unknown keys: planets"),
        ("area", '{"circles": [{"lat": 95, "lon": 2, "km": 10}]}', "a radius from 0 to 1000 km"),
        ("inventory", '["tv"]', "Some of &quot;site&quot; and &quot;app&quot;"),
        ("min_cpm", "7", "The minimum CPM is above the maximum."),
        ("cap_hours", "24", "A frequency cap needs both"),
    ):
        page = marketer_browser.post(url, line_form(target, [ours], **{field: value}))
        assert page.status_code == 200 and message in page.content.decode(), (field, value)
    page = marketer_browser.post(url, line_form(target, [ours, theirs]))
    assert page.status_code == 200 and "Select a valid choice" in page.content.decode()
    assert not LineItem.objects.exists()
    page = marketer_browser.post(url, line_form(target, [ours], cap_impressions="3", cap_hours="24"))
    assert page.status_code == 302, page.content.decode()[:2000]
    line = LineItem.objects.get()
    assert line.workspace == workspace and line.base_cpm == Decimal("2.5") and line.dayparts == [[8, 12], [18, 23]]
    assert list(line.creatives.all()) == [ours]


def test_a_target_of_an_email_campaign_or_of_another_workspace_is_refused(marketer_browser, workspace, other_workspace):
    email = make_running_campaign(workspace=workspace, channels=("email",)).targets.get()
    foreign = make_running_campaign(workspace=other_workspace, channels=("display",)).targets.get()
    url = reverse("admin:programmatic_lineitem_add")
    page = marketer_browser.post(url, line_form(email, [creative(workspace)]))
    assert "Its campaign does not run on display." in page.content.decode()
    page = marketer_browser.post(url, line_form(foreign, []))
    assert "Select a valid choice" in page.content.decode()
    assert not LineItem.objects.exists()


def test_a_creatives_categories_are_iab_categories(marketer_browser, workspace):
    url = reverse("admin:programmatic_creative_add")
    data = {
        "workspace": workspace.pk,
        "name": "Soldes",
        "width": "300",
        "height": "250",
        "markup": "<a href='{{landing_url}}'>Soldes</a>",
        "landing_url": "https://maison.example/soldes",
        "advertiser_domain": "maison.example",
        "categories": '["shopping"]',
        "active": "on",
    }
    page = marketer_browser.post(url, data)
    assert "A list of IAB content categories" in page.content.decode()
    page = marketer_browser.post(url, {**data, "advertiser_domain": "not a domain"})
    assert "A domain such as shop.example." in page.content.decode()
    assert marketer_browser.post(url, {**data, "categories": '["IAB22", "IAB3-1"]'}).status_code == 302
    assert Creative.objects.get().categories == ["IAB22", "IAB3-1"]


def test_the_bid_report_charts_the_rows_shown_and_nothing_of_another_workspace(
    marketer_browser, workspace, other_workspace
):
    from datetime import date

    ours = make_running_campaign(workspace=workspace, channels=("display",), name="Soldes d'hiver")
    theirs = make_running_campaign(workspace=other_workspace, channels=("display",), name="Rival sale")
    line = LineItem.objects.create(target=ours.targets.get(), base_cpm=2, min_cpm=1, max_cpm=6)
    rival = LineItem.objects.create(target=theirs.targets.get(), base_cpm=2, min_cpm=1, max_cpm=6)
    for day, bids, wins, nanos in ((date(2026, 12, 1), 100, 40, 80_000_000), (date(2026, 12, 2), 200, 50, 90_000_000)):
        BidDay.objects.create(
            workspace=workspace, line_item=line, day=day, bids=bids, wins=wins, impressions=wins, spend_nanos=nanos
        )
        BidDay.objects.create(
            workspace=other_workspace, line_item=rival, day=day, bids=9999, wins=9999, impressions=9999, spend_nanos=1
        )
    BidderDay.objects.create(
        workspace=workspace, day=date(2026, 12, 1), requests=1000, bid_requests=100, late=3, no_bid={"audience": 800}
    )
    BidderDay.objects.create(workspace=other_workspace, day=date(2026, 12, 1), requests=5, no_bid={"rival": 5})
    page = marketer_browser.get(reverse("admin:programmatic_bidday_changelist"))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-series="Bids" data-values="100,200"' in html
    assert 'data-series="Wins" data-values="40,50"' in html
    assert 'data-series="Spend, EUR" data-values="0.08,0.09"' in html
    assert 'data-series="eCPM, EUR" data-values="2,1.8"' in html
    assert 'data-series="Win rate" data-values="0.40,0.25"' in html
    assert 'data-label="audience" data-value="800"' in html and "rival" not in html.lower()
    assert "Rival sale" not in html and "9999" not in html and "9,999" not in html
    # Filtered to one campaign and one day: the charts follow the rows.
    url = reverse("admin:programmatic_bidday_changelist")
    page = marketer_browser.get(url, {"line_item__target__campaign__id__exact": ours.pk, "day": "2026-12-02"})
    assert 'data-series="Bids" data-values="200"' in page.content.decode()
