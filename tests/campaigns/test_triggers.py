"""Triggered campaigns: the event, the delay, the purchase that cancels, consent and status at send time."""

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, PendingSend, Touch
from campaigns.triggers import events_trigger, pending_sends_run
from customers.ingestion import events_ingest
from tests.factories import make_campaign, make_consent, make_event, make_order, make_profile

PAST = timezone.now() - timedelta(days=10)
TWO_HOURS = timedelta(hours=2)


@pytest.fixture
def cart_campaign(workspace):
    campaign = make_campaign(
        workspace=workspace,
        targets=[
            {
                "segment": None,
                "trigger_event": "cart_abandoned",
                "trigger_properties": {"category": "shoes"},
                "trigger_delay": TWO_HOURS,
                "variant": "cart-10",
                "body_template": "10% off {{event.sku}} with {{discount_code}}",
                "discount_code": "CART10",
                "discount_percent": "10",
            }
        ],
    )
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ACTIVE)
    return campaign


def shopper(workspace, external_id, consent=True):
    profile = make_profile(workspace=workspace, external_id=external_id, email=f"{external_id}@example.com")
    if consent:
        make_consent(profile=profile, purpose="direct_marketing", channel="email", recorded_at=PAST)
    return profile


def abandon(profile, at, category="shoes"):
    return make_event(
        profile=profile, type="cart_abandoned", occurred_at=at, properties={"sku": "SKU-9", "category": category}
    )


def test_a_matching_event_waits_for_its_delay_then_sends(workspace, cart_campaign):
    ana = shopper(workspace, "ana")
    at = timezone.now() - timedelta(minutes=30)
    event = abandon(ana, at)
    other = abandon(ana, at, category="books")  # property filter: not a match
    assert events_trigger(workspace_id=workspace.pk, event_ids=[event.pk, other.pk]) == 1
    assert events_trigger(workspace_id=workspace.pk, event_ids=[event.pk]) == 0  # replay-safe
    pending = PendingSend.objects.get()
    assert pending.due_at == at + TWO_HOURS
    assert pending_sends_run(now=at + TWO_HOURS - timedelta(seconds=1)) == {"cancelled": 0, "sent": 0, "skipped": 0}
    result = pending_sends_run(now=at + TWO_HOURS)
    assert result["sent"] == 1
    touch = Touch.objects.get()
    assert (touch.profile, touch.event, touch.variant, touch.channel) == (ana, event, "cart-10", "email")


def test_a_purchase_before_the_delay_cancels_the_send(workspace, cart_campaign):
    bob, eve = shopper(workspace, "bob"), shopper(workspace, "eve")
    at = timezone.now() - timedelta(hours=3)
    events = [abandon(bob, at), abandon(eve, at)]
    events_trigger(workspace_id=workspace.pk, event_ids=[e.pk for e in events])
    make_order(profile=bob, ordered_at=at + timedelta(hours=1))  # bought within the delay
    make_order(profile=eve, ordered_at=at - timedelta(hours=1))  # bought before abandoning: still sent
    result = pending_sends_run(now=timezone.now())
    assert (result["cancelled"], result["sent"]) == (1, 1)
    assert PendingSend.objects.get(profile=bob).reason == "bought after the trigger event"
    assert list(Touch.objects.values_list("profile", flat=True)) == [eve.pk]


def test_consent_and_status_are_checked_when_the_send_is_due(workspace, cart_campaign):
    no_consent = shopper(workspace, "nc", consent=False)
    at = timezone.now() - timedelta(hours=3)
    events_trigger(workspace_id=workspace.pk, event_ids=[abandon(no_consent, at).pk])
    assert pending_sends_run()["skipped"] == 1
    assert not Touch.objects.exists()
    ok = shopper(workspace, "ok")
    events_trigger(workspace_id=workspace.pk, event_ids=[abandon(ok, at).pk])
    Campaign.objects.filter(pk=cart_campaign.pk).update(status=Campaign.Status.PAUSED)
    assert pending_sends_run()["skipped"] == 1
    assert PendingSend.objects.get(profile=ok).reason == "campaign not active"


def test_events_from_ingestion_reach_the_trigger_through_the_worker(
    workspace, cart_campaign, eager_tasks, django_capture_on_commit_callbacks
):
    shopper(workspace, "ana")
    at = (timezone.now() - timedelta(minutes=5)).isoformat()
    item = {
        "external_id": "ana",
        "type": "cart_abandoned",
        "channel": "web",
        "occurred_at": at,
        "idempotency_key": "e1",
        "properties": {"sku": "SKU-9", "category": "shoes"},
    }
    with django_capture_on_commit_callbacks(execute=True):
        report = events_ingest(workspace=workspace, items=[item])
    assert report.created == 1, report
    assert PendingSend.objects.filter(status="waiting").count() == 1


def test_the_message_renders_the_triggering_events_properties(workspace, cart_campaign, eager_tasks):
    from campaigns.activation import campaign_handoff
    from campaigns.models import Handoff

    zoe = shopper(workspace, "zoe")
    at = timezone.now() - timedelta(hours=3)
    events_trigger(workspace_id=workspace.pk, event_ids=[abandon(zoe, at).pk])
    pending_sends_run()
    campaign_handoff(campaign_id=cart_campaign.pk)
    content = Handoff.objects.get().file.open("rb").read().decode()
    assert "10% off SKU-9 with CART10" in content
