"""The daily roll-up: every source lands on its campaign, target, channel and day; incremental = full."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.services import spend_record
from core.time import local_day
from reporting.models import AttributionSettings, DailyRollup, RollupState
from reporting.services import figures_ingest, rollup_run
from tests.factories import make_order, make_profile, make_running_campaign, make_touch, yesterday_at

pytestmark = pytest.mark.django_db

FIELDS = [
    "campaign_id",
    "target_id",
    "channel",
    "day",
    "impressions",
    "clicks",
    "spend",
    "reported_conversions",
    "reported_revenue",
    "sends",
    "conversions",
    "revenue",
]


def snapshot(workspace):
    return sorted(
        tuple(str(v) for v in row) for row in DailyRollup.objects.filter(workspace=workspace).values_list(*FIELDS)
    )


@pytest.fixture
def busy(workspace):
    campaign = make_running_campaign(workspace=workspace, targets=2, channels=("email", "sms"))
    a, b = campaign.targets.order_by("id")
    people = [make_profile(workspace=workspace) for _ in range(4)]
    morning = yesterday_at(workspace, 10)  # the same local day whatever the time the test runs
    yesterday = local_day(workspace, morning)
    for person in people:
        make_touch(campaign=campaign, target=a, profile=person, sent_at=morning - timedelta(minutes=5))
    make_touch(campaign=campaign, target=b, profile=people[0], channel="sms", sent_at=morning)
    make_order(profile=people[0], ordered_at=morning + timedelta(hours=1), amount="80.00")
    figures_ingest(
        rows=[
            {
                "campaign": campaign,
                "target": a,
                "channel": "email",
                "day": yesterday,
                "source": "esp",
                "impressions": 900,
                "clicks": 45,
                "conversions": 2,
                "spend": Decimal("30.00"),
                "revenue": Decimal("95.00"),
            },
        ]
    )
    spend_record(campaign=campaign, amount="12.50", idempotency_key="manual-1")  # no target, no channel
    return campaign, a, b, people, yesterday


def test_the_roll_up_gathers_spend_figures_sends_and_attributed_orders(busy, workspace):
    campaign, a, b, people, yesterday = busy
    stats = rollup_run(workspace=workspace)
    assert stats["full"] is True
    rows = {(r.target_id, r.channel, r.day): r for r in DailyRollup.objects.filter(campaign=campaign)}
    email = rows[(a.pk, "email", yesterday)]
    assert (email.impressions, email.clicks, email.spend, email.reported_conversions, email.sends) == (
        900,
        45,
        Decimal("30.00"),
        2,
        4,
    )
    sms = rows[(b.pk, "sms", yesterday)]
    assert (sms.sends, sms.conversions, sms.revenue) == (1, 1, Decimal("80.00"))  # the last touch was the SMS
    today = local_day(workspace, timezone.now())
    assert rows[(None, "", today)].spend == Decimal("12.50")
    assert sum(r.spend for r in rows.values()) == Decimal("42.50")


def test_an_incremental_run_gives_what_a_full_run_gives(busy, workspace):
    campaign, a, b, people, yesterday = busy
    rollup_run(workspace=workspace)
    now = timezone.now()
    # new data: a restated figure, fresh deliveries, a new order, a refund
    figures_ingest(
        rows=[
            {
                "campaign": campaign,
                "target": a,
                "channel": "email",
                "day": yesterday,
                "source": "esp",
                "impressions": 1200,
                "clicks": 60,
                "conversions": 3,
                "spend": Decimal("41.00"),
                "revenue": Decimal("120.00"),
            },
        ]
    )
    # Today in the workspace's calendar, in the past, whatever the time the test runs (just after
    # midnight too): steps of at most ten minutes that stay after midnight.
    step = min(timedelta(minutes=10), (now - yesterday_at(workspace, 0) - timedelta(days=1)) / 4)
    for person in people[:2]:
        make_touch(campaign=campaign, target=b, profile=person, sent_at=now - 3 * step)
    make_order(profile=people[1], ordered_at=now - step, amount="55.00")
    stats = rollup_run(workspace=workspace)
    assert stats["full"] is False and stats["campaigns"] == 1
    incremental = snapshot(workspace)
    rollup_run(workspace=workspace, full=True)
    assert snapshot(workspace) == incremental
    today = local_day(workspace, now)
    fresh = DailyRollup.objects.get(campaign=campaign, target=b, channel="email", day=today)
    assert (fresh.sends, fresh.conversions, fresh.revenue) == (2, 1, Decimal("55.00"))


def test_an_incremental_run_with_nothing_new_touches_nothing(busy, workspace):
    rollup_run(workspace=workspace)
    before = snapshot(workspace)
    RollupState.objects.filter(workspace=workspace).update(watermark=timezone.now() + timedelta(minutes=10))
    stats = rollup_run(workspace=workspace)
    assert (stats["full"], stats["campaigns"], stats["rows"]) == (False, 0, 0)
    assert snapshot(workspace) == before


def test_one_workspace_never_sees_anothers_data(busy, workspace, other_workspace):
    campaign = make_running_campaign(workspace=other_workspace)
    person = make_profile(workspace=other_workspace)
    make_touch(campaign=campaign, target=campaign.targets.get(), profile=person)
    rollup_run(workspace=workspace)
    assert not DailyRollup.objects.filter(campaign=campaign).exists()
    rollup_run(workspace=other_workspace)
    assert set(DailyRollup.objects.filter(workspace=other_workspace).values_list("campaign_id", flat=True)) == {
        campaign.pk
    }


def test_new_attribution_windows_attribute_every_order_again(busy, workspace):
    rollup_run(workspace=workspace)
    assert rollup_run(workspace=workspace)["reattributed"] is False
    assert DailyRollup.objects.filter(workspace=workspace, conversions=1).count() == 1
    # The windows are first saved now (reading them writes nothing).
    AttributionSettings.objects.update_or_create(workspace=workspace, defaults={"view_window": timedelta(minutes=30)})
    stats = rollup_run(workspace=workspace)
    assert stats["reattributed"] is True and stats["full"] is True
    # the SMS an hour before the order is now out of the window
    assert not DailyRollup.objects.filter(workspace=workspace, conversions__gt=0).exists()
    assert snapshot(workspace) == (rollup_run(workspace=workspace, full=True) and snapshot(workspace))
