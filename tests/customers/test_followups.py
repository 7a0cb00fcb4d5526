"""Side effects of ingestion leave the request after commit, as tasks that retry: a handler that
fails never changes the ingest response, and the trigger is not lost."""

import logging
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import PendingSend
from customers.followups import event_handler_register, event_handler_unregister
from customers.models import Event
from reporting.models import Click
from tests.campaigns import test_triggers
from tests.factories import make_running_campaign, make_touch

cart_campaign = test_triggers.cart_campaign  # the fixture: an active triggered campaign
shopper = test_triggers.shopper


@pytest.fixture
def flaky():
    """A handler of another app that fails the first time it runs, then works."""
    calls: list[list[int]] = []

    def handler(*, workspace_id: int, event_ids: list[int]) -> None:
        calls.append(sorted(event_ids))
        if len(calls) == 1:
            raise ConnectionError("the downstream service hiccuped")

    event_handler_register(name="tests.flaky", handler=handler)
    yield calls
    event_handler_unregister(name="tests.flaky")


@pytest.fixture
def broken():
    def handler(*, workspace_id: int, event_ids: list[int]) -> None:
        raise RuntimeError("always fails")

    event_handler_register(name="tests.broken", handler=handler)
    yield
    event_handler_unregister(name="tests.broken")


def post_events(client, items):
    return client.post(reverse("ingest-events", kwargs={"workspace": "maison"}), {"items": items}, format="json")


def cart_and_click(workspace, cart_campaign):
    ana = shopper(workspace, "ana")
    campaign = make_running_campaign(workspace=workspace)
    touch = make_touch(campaign=campaign, target=campaign.targets.first(), profile=ana, sent_at=timezone.now())
    at = (timezone.now() - timedelta(minutes=5)).isoformat()
    return touch, [
        {
            "idempotency_key": "cart-1",
            "external_id": "ana",
            "type": "cart_abandoned",
            "channel": "web",
            "occurred_at": at,
            "properties": {"sku": "SKU-9", "category": "shoes"},
        },
        {
            "idempotency_key": "click-1",
            "external_id": "ana",
            "type": "email_click",
            "channel": "email",
            "occurred_at": at,
            "properties": {"touch_id": touch.pk},
        },
    ]


def test_a_handler_that_fails_once_is_retried_and_the_other_follow_ups_happen(
    workspace,
    marketer,
    cart_campaign,
    flaky,
    eager_tasks,
    django_capture_on_commit_callbacks,
):
    touch, items = cart_and_click(workspace, cart_campaign)
    with django_capture_on_commit_callbacks(execute=True):
        r = post_events(marketer, items)
    assert r.status_code == 200, r.content
    assert (r.json()["created"], r.json()["rejected"]) == (2, [])
    ids = sorted(Event.objects.filter(workspace=workspace).values_list("pk", flat=True))
    assert flaky == [ids, ids]  # failed, then retried with the same events
    assert PendingSend.objects.filter(status="waiting").count() == 1  # the trigger is not lost
    assert Click.objects.get().touch_id == touch.pk


def test_a_handler_that_keeps_failing_never_changes_the_ingest_response(
    workspace,
    marketer,
    cart_campaign,
    broken,
    eager_tasks,
    django_capture_on_commit_callbacks,
    caplog,
):
    touch, items = cart_and_click(workspace, cart_campaign)
    with caplog.at_level(logging.ERROR, logger="customers.followups"):
        with django_capture_on_commit_callbacks(execute=True):
            r = post_events(marketer, items)
    assert r.status_code == 200, r.content
    assert r.json()["created"] == 2
    assert Event.objects.filter(workspace=workspace).count() == 2
    assert PendingSend.objects.filter(status="waiting").count() == 1
    assert Click.objects.count() == 1
    assert "Follow-up tests.broken of 2 new events" in caplog.text
    assert "ana" not in caplog.text  # ids only, never personal data

    with django_capture_on_commit_callbacks(execute=True):
        replay = post_events(marketer, items)
    assert (replay.json()["created"], replay.json()["duplicates"]) == (0, 2)
