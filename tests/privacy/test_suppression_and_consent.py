"""Objection is absolute and outlives erasure; withdrawal takes effect at once; consent valid at a time;
consent import with proof."""

import hashlib
import hmac
import json
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from audiences.exports import export_request, export_run
from audiences.models import AudienceMember
from campaigns.activation import campaign_deliveries
from campaigns.models import Connector, PendingSend, Touch
from customers.models import Profile
from privacy.models import ConsentRecord, RemovalNotice, Suppression
from privacy.selectors import profiles_contactable
from tests.factories import make_consent, make_event, make_profile, make_segment
from tests.privacy.people import EMAIL, PHONE, contactable, everywhere, running, url


def request_done(client, **body):
    created = client.post(url("privacy-request-list"), body, format="json")
    assert created.status_code == 201, created.json()
    done = client.post(url("privacy-request-complete", created.json()["id"]))
    assert done.status_code == 200, done.json()
    return done.json()


def test_an_objector_reimported_after_erasure_is_kept_out_of_every_activation(workspace, officer, marketer):
    claire, bob, _ = everywhere(workspace, officer.user)
    objection = request_done(officer, kind="objection", profile=claire.pk)
    assert objection["outcome"]["suppressed"] == 2  # her e-mail and her phone
    request_done(officer, kind="erasure", profile=claire.pk)
    assert Suppression.objects.filter(workspace=workspace).count() == 2  # the list outlives the erasure

    # She comes back through the shop's ingestion, with her e-mail spelt differently, and ticks the box again.
    sent = marketer.post(
        reverse("ingest-profiles", kwargs={"workspace": "maison"}),
        {
            "items": [
                {"idempotency_key": "re-1", "external_id": "SHOP-77", "email": f"  {EMAIL.upper()} ", "country": "FR"}
            ]
        },
        format="json",
    )
    assert sent.status_code in (200, 201, 207), sent.json()
    back = Profile.objects.get(workspace=workspace, external_id="SHOP-77")
    make_consent(profile=back, channel="email")
    make_consent(profile=back, purpose="ad_targeting", channel="display")
    segment = make_segment(workspace=workspace)
    assert AudienceMember.objects.filter(audience=segment.audience, profile=back).exists()  # she is in the segment
    campaign = running(workspace, segment, channels=("email",))
    campaign_deliveries(campaign_id=campaign.pk)
    assert set(Touch.objects.filter(campaign=campaign).values_list("profile_id", flat=True)) == {bob.pk}
    for channel, purpose in (("email", "direct_marketing"), ("display", "ad_targeting")):
        export = export_request(
            segment=segment, purpose=purpose, channel=channel, format="csv", identifiers="hashed", by=None, role="admin"
        )
        export = export_run(export_id=export.pk)
        assert export.row_count == 1  # Bob only
    # A triggered send for her is skipped when due.
    trigger = running(workspace, segment)
    target = trigger.targets.get()
    target.trigger_event = "cart_abandoned"
    target.trigger_delay = timedelta(0)
    target.save()
    from campaigns.triggers import events_trigger, pending_sends_run

    event = make_event(profile=back, type="cart_abandoned", occurred_at=timezone.now() - timedelta(minutes=1))
    events_trigger(workspace_id=workspace.pk, event_ids=[event.pk])
    pending_sends_run()
    assert PendingSend.objects.get(profile=back, target=target).status == "skipped"
    assert not Touch.objects.filter(profile=back).exists()


def test_an_objection_by_phone_alone_suppresses_a_person_not_in_the_base(workspace, officer):
    done = request_done(officer, kind="objection", subject="06 12 34 56 78")
    assert done["outcome"] == {"suppressed": 1}
    person = contactable(workspace, "NEW", email="new@example.com", phone=PHONE)
    segment = make_segment(workspace=workspace)
    campaign = running(workspace, segment, channels=("sms",))
    campaign_deliveries(campaign_id=campaign.pk)
    assert not Touch.objects.filter(profile=person).exists()


def test_withdrawal_in_one_call_cancels_pending_sends_and_notifies_past_destinations(
    workspace, marketer, officer, receiver, eager_tasks
):
    handler, hook = receiver
    Connector.objects.create(
        workspace=workspace, channel="sms", kind="webhook", url=hook, secret="s3cret", max_attempts=1
    )
    claire, bob, things = everywhere(workspace, officer.user)
    response = marketer.post(
        reverse("consent-withdraw", kwargs={"workspace": "maison"}),
        {"profile": claire.pk, "purposes": ["direct_marketing"], "source": "preference-centre"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert sorted((r["channel"], r["status"]) for r in response.json()) == [
        ("email", "withdrawn"),
        ("sms", "withdrawn"),
    ]
    # The display grant (ad targeting) was not asked for: it stays.
    state = marketer.get(url("consent-current"), {"profile": claire.pk}).json()
    assert {(r["purpose"], r["channel"], r["status"]) for r in state} == {
        ("direct_marketing", "email", "withdrawn"),
        ("direct_marketing", "sms", "withdrawn"),
        ("ad_targeting", "display", "granted"),
    }
    assert not Touch.objects.filter(profile=claire, status="pending").exists()
    assert PendingSend.objects.get(profile=claire).status == "cancelled"
    notices = {n.channel: n for n in RemovalNotice.objects.filter(profile=claire)}
    assert set(notices) == {"email"}  # her e-mail went out in a delivery file; the sms never left
    assert notices["email"].status == "manual"  # a file connector: listed for the team
    # Withdrawing again is refused: nothing is granted any more on those channels.
    again = marketer.post(
        reverse("consent-withdraw", kwargs={"workspace": "maison"}),
        {"profile": claire.pk, "purposes": ["direct_marketing"]},
        format="json",
    )
    assert again.status_code == 400 and again.json()["non_field_errors"][0]["code"] == "nothing_to_withdraw"
    assert handler.calls == []


def test_a_removal_goes_signed_to_the_webhook_of_a_past_destination(
    workspace, officer, receiver, eager_tasks, django_capture_on_commit_callbacks
):
    handler, hook = receiver
    Connector.objects.create(workspace=workspace, channel="email", kind="webhook", url=hook, secret="s3cret")
    claire = contactable(workspace, "C1", email=EMAIL)
    segment = make_segment(workspace=workspace)
    campaign = running(workspace, segment)
    from campaigns.activation import campaign_handoff

    campaign_deliveries(campaign_id=campaign.pk)
    campaign_handoff(campaign_id=campaign.pk)
    handler.calls.clear()
    with django_capture_on_commit_callbacks(execute=True):
        done = request_done(officer, kind="objection", profile=claire.pk)
    assert done["outcome"]["removal_notices"] == 1
    headers, body = handler.calls[-1]
    payload = json.loads(body)
    assert payload["type"] == "removal" and payload["reason"] == "objection"
    assert payload["person"]["email_sha256"] == [hashlib.sha256(EMAIL.encode()).hexdigest()]
    expected = hmac.new(b"s3cret", headers["X-Cible-Timestamp"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["X-Cible-Signature"] == f"sha256={expected}"
    assert EMAIL not in body.decode()
    assert RemovalNotice.objects.get(profile=claire).status == "sent"
    listed = officer.get(url("privacy-request-destinations", done["id"])).json()
    assert [(d["type"], d["channel"]) for d in listed] == [("handoff", "email")]


def test_consent_valid_at_a_time(workspace, marketer):
    profile = make_profile(workspace=workspace)
    t0 = timezone.now() - timedelta(days=30)
    make_consent(profile=profile, recorded_at=t0)
    make_consent(profile=profile, status="withdrawn", recorded_at=t0 + timedelta(days=10))
    make_consent(profile=profile, recorded_at=t0 + timedelta(days=20))

    def at(moment):
        r = marketer.get(url("consent-current"), {"profile": profile.pk, "at": moment.isoformat()})
        assert r.status_code == 200, r.json()
        return [x["status"] for x in r.json()]

    assert at(t0 - timedelta(seconds=1)) == []
    assert at(t0) == ["granted"]
    assert at(t0 + timedelta(days=10, seconds=-1)) == ["granted"]
    assert at(t0 + timedelta(days=10)) == ["withdrawn"]
    assert at(t0 + timedelta(days=15)) == ["withdrawn"]
    assert at(t0 + timedelta(days=20)) == ["granted"]
    bad = marketer.get(url("consent-current"), {"profile": profile.pk, "at": "yesterday"})
    assert bad.status_code == 400 and "at" in bad.json()
    missing = marketer.get(url("consent-current"))
    assert missing.status_code == 400 and "profile" in missing.json()


def test_a_new_profile_has_no_marketing_consent(workspace, marketer):
    created = marketer.post(
        reverse("profile-list", kwargs={"workspace": "maison"}),
        {"external_id": "NEW-1", "email": "n@example.com"},
        format="json",
    )
    assert created.status_code == 201
    state = marketer.get(url("consent-current"), {"profile": created.json()["id"]}).json()
    assert state == []
    assert not profiles_contactable(
        profiles=Profile.objects.filter(pk=created.json()["id"]),
        workspace_id=workspace.pk,
        purpose="direct_marketing",
        channel="email",
    ).exists()


def test_consent_import_needs_its_proof_and_is_replay_safe(workspace, marketer):
    make_profile(workspace=workspace, external_id="A1")
    make_profile(workspace=workspace, external_id="A2")
    when = (timezone.now() - timedelta(days=3)).isoformat()
    rows = [
        {
            "external_id": "A1",
            "purpose": "direct_marketing",
            "channel": "email",
            "status": "granted",
            "recorded_at": when,
            "source": "paper-form",
            "proof": "scan-2026-0012.pdf sha256:ab12",
        },
        {
            "external_id": "A2",
            "purpose": "direct_marketing",
            "channel": "sms",
            "status": "granted",
            "recorded_at": when,
            "source": "web",
            "form": "/newsletter",
            "ip_address": "203.0.113.9",
        },
    ]
    endpoint = reverse("consent-import-records", kwargs={"workspace": "maison"})
    bad = marketer.post(
        endpoint,
        {"records": [*rows, {**rows[0], "external_id": "A2", "proof": ""}, {**rows[0], "external_id": "ZZ"}]},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json() == {
        "records": {
            "2": {
                "proof": [
                    {
                        "message": "A consent grant needs its proof: a proof reference, or the form and the IP address.",
                        "code": "proof_required",
                    }
                ]
            },
            "3": {"external_id": [{"message": "No such profile in this workspace.", "code": "does_not_exist"}]},
        }
    }
    assert ConsentRecord.objects.count() == 0  # all or nothing
    ok = marketer.post(endpoint, {"records": rows}, format="json")
    assert ok.status_code == 201 and ok.json() == {"received": 2, "created": 2, "duplicates": 0}
    replay = marketer.post(endpoint, {"records": rows}, format="json")
    assert replay.json() == {"received": 2, "created": 0, "duplicates": 2}
    record = ConsentRecord.objects.get(profile__external_id="A1")
    assert record.proof.startswith("scan-2026-0012.pdf") and record.created_by == marketer.user


def test_withdrawals_imported_for_many_people_take_effect_together(workspace, marketer, officer):
    claire, bob, _ = everywhere(workspace, officer.user)
    when = timezone.now().isoformat()
    rows = [
        {
            "external_id": "CRM-CLAIRE",
            "purpose": "direct_marketing",
            "channel": "sms",
            "status": "withdrawn",
            "recorded_at": when,
            "source": "crm-sync",
        },
        {
            "external_id": "CRM-BOB",
            "purpose": "direct_marketing",
            "channel": "email",
            "status": "withdrawn",
            "recorded_at": when,
            "source": "crm-sync",
        },
    ]
    response = marketer.post(
        reverse("consent-import-records", kwargs={"workspace": "maison"}), {"records": rows}, format="json"
    )
    assert response.status_code == 201 and response.json()["created"] == 2
    # Claire's pending SMS is cancelled; her triggered e-mail send may still go (e-mail is still granted).
    assert not Touch.objects.filter(profile=claire, channel="sms", status="pending").exists()
    assert PendingSend.objects.get(profile=claire).status == "waiting"
    # Bob's e-mail went out in an export and a delivery file: the destination gets a removal notice.
    assert list(RemovalNotice.objects.values_list("profile_id", "channel", "reason")) == [
        (bob.pk, "email", "withdrawal")
    ]
