"""One timeline per person: events from every channel, orders, consents, campaign deliveries,
identifiers and merges, in the workspace's time zone; the API and the admin page serve it."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from customers.models import Identity, ProfileMerge
from customers.services import profile_merge
from tests.factories import (
    make_consent,
    make_event,
    make_order,
    make_profile,
    make_running_campaign,
    make_touch,
    make_user,
)


def timeline_url(profile, ws="maison"):
    return reverse("profile-timeline", kwargs={"workspace": ws, "pk": profile.pk})


def journey(workspace):
    person = make_profile(workspace=workspace, external_id="C1", first_name="Léa")
    start = timezone.now() - timedelta(days=3)
    make_event(profile=person, type="page_view", channel="web", occurred_at=start, properties={"url": "/shoes"})
    make_event(profile=person, type="app_open", channel="app", occurred_at=start + timedelta(hours=1))
    make_event(profile=person, type="store_visit", channel="store", occurred_at=start + timedelta(hours=2))
    make_event(
        profile=person, type="customer_service_contact", channel="call_center", occurred_at=start + timedelta(hours=3)
    )
    make_consent(profile=person, channel="sms", purpose="direct_marketing", recorded_at=start + timedelta(hours=4))
    campaign = make_running_campaign(workspace=workspace, channels=("email",), name="Soldes")
    target = campaign.targets.get()
    make_touch(campaign=campaign, target=target, profile=person, channel="email", sent_at=start + timedelta(hours=5))
    make_event(profile=person, type="email_open", channel="email", occurred_at=start + timedelta(hours=6))
    order = make_order(profile=person, amount="59.90", channel="store", ordered_at=start + timedelta(hours=7))
    order.order_id = "T-9"
    order.save()
    return person


def test_the_timeline_shows_every_channel_and_kind_newest_first_in_the_workspace_time_zone(viewer, workspace):
    workspace.time_zone = "America/New_York"
    workspace.save()
    person = journey(workspace)
    body = viewer.get(timeline_url(person)).json()
    assert body["time_zone"] == "America/New_York"
    kinds = [(e["kind"], e["channel"]) for e in body["entries"]]
    assert kinds == [
        ("order", "store"),
        ("event", "email"),
        ("touch", "email"),
        ("consent", "sms"),
        ("event", "call_center"),
        ("event", "store"),
        ("event", "app"),
        ("event", "web"),
    ]
    assert body["entries"][0]["title"] == "Order T-9: 59.90 EUR"
    assert body["entries"][2]["title"] == "Campaign Soldes"
    assert body["entries"][0]["at"].endswith(("-05:00", "-04:00"))
    assert body["next_before"] is None


def test_the_timeline_pages_and_filters_by_channel(viewer, workspace):
    person = journey(workspace)
    first = viewer.get(timeline_url(person), {"limit": 3}).json()
    assert len(first["entries"]) == 3 and first["next_before"]
    rest = viewer.get(
        timeline_url(person), {"limit": 100, "before": first["next_before"], "skip": first["next_skip"]}
    ).json()
    assert len(rest["entries"]) == 5
    email = viewer.get(timeline_url(person) + "?channel=email&channel=store").json()
    assert {e["channel"] for e in email["entries"]} == {"email", "store"} and len(email["entries"]) == 4


def test_bad_timeline_parameters_are_400s_naming_the_field(viewer, workspace):
    person = make_profile(workspace=workspace)
    for params, field in (
        ({"limit": "0"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"before": "soon"}, "before"),
        ({"channel": "fax"}, "channel"),
        ({"other": "1"}, "other"),
    ):
        r = viewer.get(timeline_url(person), params)
        assert r.status_code == 400 and field in r.json(), (params, r.content)


def test_another_workspace_cannot_read_a_timeline(outsider, workspace):
    person = journey(workspace)
    assert outsider.get(timeline_url(person)).status_code == 404


def test_merges_and_identifiers_appear_on_the_survivors_timeline_and_graph(viewer, workspace):
    survivor = make_profile(workspace=workspace, external_id="A")
    other = make_profile(workspace=workspace, external_id="B")
    Identity.objects.create(workspace=workspace, profile=other, type="cookie", value="ck-1")
    profile_merge(survivor=survivor, merged=other)
    titles = [e["title"] for e in viewer.get(timeline_url(survivor)).json()["entries"]]
    assert "Profile B merged in, by hand" in titles and "Identifier first seen: Cookie id" in titles
    graph = viewer.get(reverse("profile-identity-graph", kwargs={"workspace": "maison", "pk": survivor.pk})).json()
    assert [i["value"] for i in graph["identities"]] == ["ck-1"]
    assert graph["merges"][0]["merged_external_id"] == "B" and graph["merges"][0]["reason"] == "manual"
    assert ProfileMerge.objects.count() == 1


def test_the_admin_profile_page_shows_the_journey_and_the_identity_graph(client, workspace):
    person = journey(workspace)
    client.force_login(make_user(workspace=workspace, role="manager"))
    page = client.get(reverse("admin:customers_profile_change", args=[person.pk])).content.decode()
    assert "Journey across channels" in page and "Campaign Soldes" in page and "Order T-9" in page
    assert "Identity graph" in page


def test_the_admin_journey_reads_in_the_workspace_time_zone(client, workspace):
    from datetime import UTC, datetime

    workspace.time_zone = "America/New_York"
    workspace.save()
    person = make_profile(workspace=workspace, external_id="NY")
    make_event(
        profile=person, type="store_visit", channel="store", occurred_at=datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    )
    client.force_login(make_user(workspace=workspace, role="viewer"))
    page = client.get(reverse("admin:customers_profile_change", args=[person.pk])).content.decode()
    assert "(America/New_York)" in page
    assert "Dec. 1, 2026, 10 a.m." in page  # 15:00 UTC is 10:00 in New York


def test_empty_timeline_parameters_are_parameters_not_given(viewer, workspace):
    person = journey(workspace)
    body = viewer.get(timeline_url(person) + "?before=&limit=&channel=").json()
    assert len(body["entries"]) == 8


def test_paging_through_entries_of_one_moment_misses_none_and_repeats_none(viewer, workspace):
    person = make_profile(workspace=workspace, external_id="SAME")
    at = timezone.now() - timedelta(days=1)
    for _ in range(7):
        make_event(profile=person, type="page_view", channel="web", occurred_at=at)
    make_event(profile=person, type="app_open", channel="app", occurred_at=at + timedelta(hours=1))
    seen, params = [], {"limit": 2}
    while True:
        body = viewer.get(timeline_url(person), params).json()
        seen += [entry["ref"] for entry in body["entries"]]
        if body["next_before"] is None:
            break
        params = {"limit": 2, "before": body["next_before"], "skip": body["next_skip"]}
    assert len(seen) == len(set(seen)) == 8
