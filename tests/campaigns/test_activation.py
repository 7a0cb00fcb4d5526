"""Activation: consent, frequency caps, area, no double delivery; the file and webhook connectors."""

import hashlib
import hmac
import json
from datetime import timedelta

from django.utils import timezone

from campaigns.activation import campaign_deliveries, campaign_handoff
from campaigns.models import Campaign, Connector, FrequencyCap, Handoff, Touch
from campaigns.services import campaign_transition
from core.webhooks import signature
from tests.factories import make_campaign, make_consent, make_event, make_profile, make_segment

PAST = timezone.now() - timedelta(days=10)


def person(workspace, external_id, *, consent=True, channel="email", **fields):
    fields.setdefault("country", "FR")
    profile = make_profile(
        workspace=workspace, external_id=external_id, email=f"{external_id.lower()}@example.com", **fields
    )
    if consent:
        purpose = "ad_targeting" if channel in ("social", "display", "search") else "direct_marketing"
        make_consent(profile=profile, purpose=purpose, channel=channel, recorded_at=PAST)
    return profile


def running(workspace, **fields) -> Campaign:
    segment = fields.pop("segment", None) or make_segment(workspace=workspace)
    campaign = make_campaign(workspace=workspace, segment=segment, **fields)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ACTIVE)
    campaign.refresh_from_db()
    return campaign


def reached(campaign) -> set[str]:
    return set(Touch.objects.filter(campaign=campaign).values_list("profile__external_id", flat=True))


def test_only_consented_members_are_delivered_and_only_once(workspace):
    person(workspace, "YES", first_name="Ana", city="Lyon")
    person(workspace, "NO", consent=False)
    person(workspace, "SMS", channel="sms")  # consented to another channel
    withdrawn = person(workspace, "GONE")
    make_consent(
        profile=withdrawn,
        purpose="direct_marketing",
        channel="email",
        status="withdrawn",
        recorded_at=PAST + timedelta(days=1),
    )
    campaign = running(workspace)
    assert sum(campaign_deliveries(campaign_id=campaign.pk).values()) == 1
    assert reached(campaign) == {"YES"}
    assert sum(campaign_deliveries(campaign_id=campaign.pk).values()) == 0  # reached already
    touch = Touch.objects.get()
    assert (touch.channel, touch.variant, touch.status) == ("email", "A", "pending")


def test_withdrawing_consent_stops_the_next_deliveries(workspace, eager_tasks):
    first = person(workspace, "FIRST")
    segment = make_segment(workspace=workspace)
    campaign = running(workspace, segment=segment)
    person(workspace, "SECOND")
    make_consent(profile=first, purpose="direct_marketing", channel="email", status="withdrawn")
    from audiences.services import audience_compute

    audience_compute(segment_id=segment.pk)
    campaign_deliveries(campaign_id=campaign.pk)
    assert reached(campaign) == {"SECOND"}


def test_frequency_caps_hold_across_the_workspaces_campaigns(workspace):
    for n in range(3):
        person(workspace, f"P{n}")
    FrequencyCap.objects.create(workspace=workspace, channel="email", max_touches=1, window=timedelta(days=7))
    segment = make_segment(workspace=workspace)
    first = running(workspace, segment=segment)
    second = running(workspace, segment=segment)
    campaign_deliveries(campaign_id=first.pk)
    campaign_deliveries(campaign_id=second.pk)
    assert len(reached(first)) == 3 and reached(second) == set()
    # Outside the window, the cap no longer holds them back.
    Touch.objects.update(created_at=timezone.now() - timedelta(days=8))
    campaign_deliveries(campaign_id=second.pk)
    assert len(reached(second)) == 3


def test_a_cap_on_all_channels_counts_every_channel(workspace):
    person(workspace, "BOTH")
    make_consent(
        profile=person(workspace, "ONLY-SMS", channel="sms"),
        purpose="direct_marketing",
        channel="email",
        recorded_at=PAST,
    )
    FrequencyCap.objects.create(workspace=workspace, channel="", max_touches=1, window=timedelta(days=1))
    campaign = running(workspace, channels=("email", "sms"))
    campaign_deliveries(campaign_id=campaign.pk)
    assert Touch.objects.filter(campaign=campaign).count() == 2  # one touch each, whatever the channel


def test_the_geographic_restriction_limits_the_target(workspace):
    person(workspace, "LYON", city="Lyon", region="Auvergne-Rhone-Alpes", latitude=45.76, longitude=4.84)
    person(workspace, "PARIS", city="Paris", region="Ile-de-France", latitude=48.86, longitude=2.35)
    segment = make_segment(workspace=workspace)
    campaign = running(
        workspace,
        targets=[{"segment": segment, "restriction": {"geo": {"near": [45.75, 4.85], "km": 20}}}],
    )
    campaign_deliveries(campaign_id=campaign.pk)
    assert reached(campaign) == {"LYON"}


def test_a_paused_campaign_decides_nothing_and_hands_off_nothing(workspace):
    person(workspace, "P")
    campaign = running(workspace)
    campaign_deliveries(campaign_id=campaign.pk)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    assert campaign_handoff(campaign_id=campaign.pk) == {"email": 0}
    assert Touch.objects.get().status == "pending"


def test_the_file_connector_writes_a_csv_per_channel_with_rendered_messages(workspace):
    ana = person(workspace, "ANA", first_name="Ana", city="Lyon")
    make_event(profile=ana, type="product_view", properties={"sku": "SKU-1", "name": "Red shoes"})
    campaign = running(
        workspace,
        targets=[
            {
                "segment": make_segment(workspace=workspace),
                "subject_template": "{{first_name}}, {{discount_percent}} % off",
                "body_template": "Still thinking of {{last_product_viewed}}? Code {{discount_code}} in {{city}}.",
                "discount_code": "WELCOME10",
                "discount_percent": "10",
            }
        ],
    )
    campaign_deliveries(campaign_id=campaign.pk)
    assert campaign_handoff(campaign_id=campaign.pk) == {"email": 1}
    handoff = Handoff.objects.get()
    lines = handoff.file.open("rb").read().decode().splitlines()
    assert lines[0].startswith("touch_id,external_id,variant,email,phone")
    assert "ANA" in lines[1] and "ana@example.com" in lines[1]
    assert '"Ana, 10.00 % off"' in lines[1]
    assert "Still thinking of Red shoes? Code WELCOME10 in Lyon." in lines[1]
    assert Touch.objects.get().status == "sent"


def test_the_webhook_signs_its_batches_and_retries_after_a_500(workspace, receiver, settings):
    settings.CIBLE_WEBHOOK_BACKOFF_SECONDS = 0.05
    handler, url = receiver
    handler.fail = 1
    for n in range(3):
        person(workspace, f"P{n}", channel="social", first_name=f"F{n}")
    Connector.objects.create(
        workspace=workspace, channel="social", kind="webhook", url=url, secret="s3cret", batch_size=2
    )
    campaign = running(workspace, channels=("social",))
    campaign_deliveries(campaign_id=campaign.pk)
    assert campaign_handoff(campaign_id=campaign.pk) == {"social": 3}
    assert len(handler.calls) == 3  # batch 1 failed once, then 2 batches delivered
    first_try, retry = handler.calls[0], handler.calls[1]
    assert first_try[1] == retry[1]  # the same batch again
    for headers, body in handler.calls:
        expected = hmac.new(b"s3cret", headers["X-Cible-Timestamp"].encode() + b"." + body, hashlib.sha256)
        assert headers["X-Cible-Signature"] == "sha256=" + expected.hexdigest()
        assert headers["X-Cible-Signature"] == signature("s3cret", headers["X-Cible-Timestamp"], body)
    payload = json.loads(handler.calls[1][1])
    assert payload["channel"] == "social" and len(payload["deliveries"]) == 2
    delivery = payload["deliveries"][0]
    assert delivery["email_sha256"] == hashlib.sha256(b"p0@example.com").hexdigest()
    assert "email" not in delivery and "first_name" not in delivery  # ad platforms get hashes only
    assert list(Handoff.objects.order_by("id").values_list("attempts", "status")) == [(2, "sent"), (1, "sent")]
    assert set(Touch.objects.values_list("status", flat=True)) == {"sent"}


def test_a_receiver_that_keeps_failing_leaves_the_batch_failed_with_the_reason(workspace, receiver, settings):
    settings.CIBLE_WEBHOOK_BACKOFF_SECONDS = 0.01
    handler, url = receiver
    handler.fail = 100
    person(workspace, "P")
    Connector.objects.create(workspace=workspace, channel="email", kind="webhook", url=url, secret="k", max_attempts=3)
    campaign = running(workspace)
    campaign_deliveries(campaign_id=campaign.pk)
    assert campaign_handoff(campaign_id=campaign.pk) == {"email": 0}
    handoff = Handoff.objects.get()
    assert (handoff.status, handoff.attempts, len(handler.calls)) == ("failed", 3, 3)
    assert "HTTP 500" in handoff.error
    assert Touch.objects.get().status == "failed"


def test_activating_a_campaign_delivers_through_the_task(workspace, eager_tasks, django_capture_on_commit_callbacks):
    person(workspace, "P")
    campaign = make_campaign(workspace=workspace, segment=make_segment(workspace=workspace))
    campaign_transition(campaign=campaign, to="scheduled")
    with django_capture_on_commit_callbacks(execute=True):
        campaign_transition(campaign=campaign, to="active")
    assert Touch.objects.get().status == "sent"


def test_activation_says_what_it_will_do_and_the_deliveries_match(workspace, marketer):
    """The forecast's figures, each left-out reason on its own person, then the touches actually written."""
    from customers.normalise import sha256_identifier
    from privacy.suppression import suppression_add

    person(workspace, "YES", region="Bretagne")
    person(workspace, "NO", consent=False, region="Bretagne")
    person(workspace, "BLOCKED", region="Bretagne")
    suppression_add(
        workspace_id=workspace.pk, hashes={("email", sha256_identifier("blocked@example.com"))}, reason="manual"
    )
    person(workspace, "AWAY", region="Alsace")
    capped = person(workspace, "CAPPED", region="Bretagne")
    other = running(workspace)
    Touch.objects.create(
        workspace=workspace,
        campaign=other,
        target=other.targets.get(),
        profile=capped,
        channel="email",
        variant="A",
        created_at=timezone.now() - timedelta(days=1),
    )
    FrequencyCap.objects.create(workspace=workspace, channel="email", max_touches=1, window=timedelta(days=7))
    segment = make_segment(workspace=workspace)
    campaign = make_campaign(
        workspace=workspace,
        targets=[
            {"segment": segment, "variant": "A", "restriction": {"field": "region", "op": "eq", "value": "Bretagne"}}
        ],
    )
    forecast = marketer.get(f"/api/workspaces/maison/campaigns/{campaign.pk}/forecast/").json()
    (target,) = forecast["targets"]
    assert (target["audience_computed"], target["members"]) == (True, 5)
    assert target["channels"] == [
        {
            "channel": "email",
            "excluded_by_consent": 1,
            "excluded_by_suppression": 1,
            "excluded_by_area": 1,
            "excluded_by_caps": 1,
            "on_preferred_channel_elsewhere": 0,
            "already_reached": 0,
            "will_receive": 1,
        }
    ]
    r = marketer.post(f"/api/workspaces/maison/campaigns/{campaign.pk}/activate/", {}, format="json")
    assert r.status_code == 200, r.json()
    assert r.json()["status"] == "active" and r.json()["forecast"]["will_receive"] == 1
    campaign_deliveries(campaign_id=campaign.pk)
    assert reached(campaign) == {"YES"}  # what was announced
    again = marketer.get(f"/api/workspaces/maison/campaigns/{campaign.pk}/forecast/").json()
    assert again["targets"][0]["channels"][0]["already_reached"] == 1 and again["will_receive"] == 0


def test_activation_is_refused_on_a_never_computed_or_empty_audience(workspace, marketer):
    never = make_segment(workspace=workspace, name="Never computed", compute=False)
    campaign = make_campaign(workspace=workspace, segment=never)
    r = marketer.post(f"/api/workspaces/maison/campaigns/{campaign.pk}/activate/", {}, format="json")
    assert r.status_code == 400
    assert r.json()["targets"][0]["code"] == "no_audience" and "Never computed" in r.json()["targets"][0]["message"]
    forecast = marketer.get(f"/api/workspaces/maison/campaigns/{campaign.pk}/forecast/").json()
    assert forecast["targets"][0]["audience_computed"] is False and forecast["will_receive"] == 0
    empty = make_segment(workspace=workspace, name="Nobody")  # no profile in the workspace: computed, empty
    campaign = make_campaign(workspace=workspace, segment=empty)
    r = marketer.post(f"/api/workspaces/maison/campaigns/{campaign.pk}/activate/", {}, format="json")
    assert (r.status_code, r.json()["targets"][0]["code"]) == (400, "empty_audience")
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
