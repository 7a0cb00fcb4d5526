"""The admin's clock: every time in the workspace's zone, the zone shown, durations as people write them."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from accounts.admin_time import list_zone
from accounts.models import Membership, Role, Workspace
from core.time import duration_text
from segments.models import Segment
from tests.factories import make_campaign, make_event, make_profile, make_user, make_workspace

START = datetime(2026, 7, 1, 14, 48, tzinfo=UTC)  # 10:48 in New York (EDT), 16:48 in Paris (CEST)


@pytest.fixture
def new_york(db):
    workspace = make_workspace(slug="nyc")
    Workspace.objects.filter(pk=workspace.pk).update(time_zone="America/New_York")
    workspace.refresh_from_db()
    return workspace


def staff(workspace, role=Role.MARKETER) -> tuple[Client, object]:
    user = make_user(workspace=workspace, role=role)
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client, user


def test_a_campaign_reads_the_same_time_in_the_list_and_on_its_page(new_york):
    campaign = make_campaign(workspace=new_york, name="Soldes", starts_at=START, ends_at=START + timedelta(days=30))
    client, _ = staff(new_york)
    listed = client.get("/admin/campaigns/campaign/").content.decode()
    assert "10:48" in listed and "14:48" not in listed
    assert 'id="cible-time-zone"' in listed and "Times in America/New_York" in listed
    page = client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()
    assert 'value="10:48:00"' in page and "Times in America/New_York" in page


def test_events_and_segments_read_in_the_zone_and_durations_as_written(workspace):
    profile = make_profile(workspace=workspace)
    make_event(profile=profile, occurred_at=START)
    Segment.objects.create(
        workspace=workspace, name="Weekly", definition={"field": "city", "op": "eq", "value": "Lyon"}
    )
    Segment.objects.filter(name="Weekly").update(refresh_every=timedelta(days=3))
    client, _ = staff(workspace)
    events = client.get("/admin/customers/event/").content.decode()
    assert "4:48" in events and "2:48" not in events  # 16:48 in Paris, shown as 4:48 p.m.
    assert "Times in Europe/Paris" in events
    segments = client.get("/admin/segments/segment/").content.decode()
    assert "3 days" in segments and "3 days, 0:00:00" not in segments


def test_a_member_of_workspaces_in_two_zones_reads_each_list_in_its_filtered_zone(workspace, new_york):
    client, user = staff(workspace)
    Membership.objects.create(user=user, workspace=new_york, role=Role.MARKETER)
    make_campaign(workspace=new_york, name="NY", starts_at=START, ends_at=START + timedelta(days=30))
    filtered = client.get(f"/admin/campaigns/campaign/?workspace__id__exact={new_york.pk}").content.decode()
    assert "Times in America/New_York" in filtered and "10:48" in filtered
    first = client.get("/admin/campaigns/campaign/").content.decode()
    assert "Times in Europe/Paris" in first and "4:48" in first  # the first workspace's zone, named
    # A change page is always in its own workspace's zone, whatever the list showed.
    campaign = new_york.campaigns.get()
    assert 'value="10:48:00"' in client.get(f"/admin/campaigns/campaign/{campaign.pk}/change/").content.decode()


def test_list_zone_and_duration_text():
    assert list_zone(type("R", (), {"GET": {}})(), {}) is None
    assert [duration_text(timedelta(days=n)) for n in (1, 3)] == ["1 day", "3 days"]
    assert duration_text(timedelta(days=1, hours=6)) == "1 day 6 hours"
    assert duration_text(timedelta(minutes=90)) == "90 minutes"
    assert duration_text(timedelta(hours=5, minutes=30)) == "5 hours 30 minutes"
    assert duration_text(timedelta(hours=12)) == "12 hours"
    assert duration_text(timedelta(seconds=5)) == "PT5S"
    assert duration_text(None) == "-"
