"""Last-touch attribution: the windows' boundaries, clicks from events, and what changes over time."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from core.time import local_day
from customers.ingestion import events_ingest
from customers.models import Order
from reporting.models import Attribution, AttributionSettings, Click
from reporting.services import attribution_run, clicks_record
from tests.factories import make_event, make_order, make_profile, make_running_campaign, make_touch

pytestmark = pytest.mark.django_db


@pytest.fixture
def setting(workspace):
    campaign = make_running_campaign(workspace=workspace, targets=2)
    a, b = campaign.targets.order_by("id")
    return campaign, a, b, make_profile(workspace=workspace, external_id="ana")


def click(touch, at):
    event = make_event(
        profile=touch.profile, type="email_click", channel="email", occurred_at=at, properties={"touch_id": touch.pk}
    )
    clicks_record(workspace_id=touch.workspace_id, event_ids=[event.pk])
    return event


def attributed(order):
    attribution_run(workspace=order.profile.workspace)
    return Attribution.objects.filter(order=order).first()


def test_a_click_counts_for_seven_days_to_the_second(setting):
    campaign, a, _, ana = setting
    clicked = timezone.now() - timedelta(days=8)
    touch = make_touch(campaign=campaign, target=a, profile=ana, sent_at=clicked - timedelta(hours=2))
    click(touch, clicked)
    inside = make_order(profile=ana, ordered_at=clicked + timedelta(days=7), amount="40.00")
    outside = make_order(profile=ana, ordered_at=clicked + timedelta(days=7, seconds=1))
    result = attributed(inside)
    assert (result.touch_id, result.kind, result.revenue, result.touched_at) == (
        touch.pk,
        "click",
        Decimal("40.00"),
        clicked,
    )
    assert not Attribution.objects.filter(order=outside).exists()


def test_a_view_counts_for_one_day_to_the_second(setting):
    campaign, a, _, ana = setting
    sent = timezone.now() - timedelta(days=3)
    touch = make_touch(campaign=campaign, target=a, profile=ana, sent_at=sent)
    inside = make_order(profile=ana, ordered_at=sent + timedelta(days=1))
    outside = make_order(profile=ana, ordered_at=sent + timedelta(days=1, seconds=1))
    before = make_order(profile=ana, ordered_at=sent - timedelta(seconds=1))
    result = attributed(inside)
    assert (result.touch_id, result.kind, result.campaign_id, result.target_id) == (touch.pk, "view", campaign.pk, a.pk)
    assert not Attribution.objects.filter(order__in=[outside, before]).exists()


def test_the_latest_qualifying_touch_wins(setting):
    campaign, a, b, ana = setting
    now = timezone.now()
    old = make_touch(campaign=campaign, target=a, profile=ana, sent_at=now - timedelta(days=3))
    click(old, now - timedelta(days=2))
    recent = make_touch(campaign=campaign, target=b, profile=ana, channel="email", sent_at=now - timedelta(hours=1))
    order = make_order(profile=ana, ordered_at=now)
    assert attributed(order).touch_id == recent.pk  # a view an hour ago is later than a click two days ago
    click(old, now - timedelta(minutes=10))
    assert attributed(order).touch_id == old.pk and attributed(order).kind == "click"


def test_windows_are_the_workspaces_to_set(setting, workspace):
    campaign, a, _, ana = setting
    sent = timezone.now() - timedelta(days=5)
    make_touch(campaign=campaign, target=a, profile=ana, sent_at=sent)
    order = make_order(profile=ana, ordered_at=sent + timedelta(days=2))
    assert attributed(order) is None
    AttributionSettings.objects.update_or_create(workspace=workspace, defaults={"view_window": timedelta(days=3)})
    assert attributed(order).kind == "view"


def test_only_completed_orders_and_the_same_persons_touches_count(setting, workspace):
    campaign, a, _, ana = setting
    bob = make_profile(workspace=workspace, external_id="bob")
    sent = timezone.now() - timedelta(hours=3)
    make_touch(campaign=campaign, target=a, profile=ana, sent_at=sent)
    make_touch(campaign=campaign, target=a, profile=ana, sent_at=sent, status="pending")
    bobs = make_order(profile=bob, ordered_at=sent + timedelta(hours=1))
    refunded = make_order(profile=ana, ordered_at=sent + timedelta(hours=1), status="refunded")
    assert attributed(bobs) is None and attributed(refunded) is None


def test_a_click_event_must_name_a_touch_of_the_clicker(
    setting, workspace, django_capture_on_commit_callbacks, eager_tasks
):
    campaign, a, _, ana = setting
    make_profile(workspace=workspace, external_id="bob")
    touch = make_touch(campaign=campaign, target=a, profile=ana, sent_at=timezone.now() - timedelta(hours=1))
    at = timezone.now().isoformat()
    items = [
        {
            "external_id": "ana",
            "type": "email_click",
            "channel": "email",
            "occurred_at": at,
            "idempotency_key": "c1",
            "properties": {"touch_id": touch.pk},
        },
        {
            "external_id": "bob",
            "type": "email_click",
            "channel": "email",
            "occurred_at": at,
            "idempotency_key": "c2",
            "properties": {"touch_id": touch.pk},
        },
        {
            "external_id": "ana",
            "type": "email_click",
            "channel": "email",
            "occurred_at": at,
            "idempotency_key": "c3",
            "properties": {"touch_id": "'; drop table x"},
        },
        {
            "external_id": "ana",
            "type": "page_view",
            "channel": "web",
            "occurred_at": at,
            "idempotency_key": "c4",
            "properties": {"touch_id": touch.pk},
        },
    ]
    with django_capture_on_commit_callbacks(execute=True):
        report = events_ingest(workspace=workspace, items=items)
    assert report.created == 4
    assert list(Click.objects.values_list("touch_id", "profile__external_id")) == [(touch.pk, "ana")]


def test_a_refund_takes_the_attribution_back_on_the_next_incremental_run(setting):
    campaign, a, _, ana = setting
    sent = timezone.now() - timedelta(hours=3)
    make_touch(campaign=campaign, target=a, profile=ana, sent_at=sent)
    order = make_order(profile=ana, ordered_at=sent + timedelta(hours=1))
    since = timezone.now()
    attribution_run(workspace=ana.workspace)
    assert Attribution.objects.count() == 1
    Order.objects.filter(pk=order.pk).update(status="refunded", updated_at=timezone.now())
    result = attribution_run(workspace=ana.workspace, changed_since=since)
    assert result["removed"] == 1 and result["attributed"] == 0
    assert not Attribution.objects.exists()
    day = local_day(ana.workspace, order.ordered_at)
    assert result["ranges"] == {campaign.pk: [day, day]}
