"""Erasure: the person's e-mail and phone are nowhere afterwards, in any column of any table or in any
file, while the aggregates stay and the request stays as a tombstone."""

import json

from django.urls import reverse
from django.utils import timezone

from audiences.models import AudienceExport, AudienceMember
from campaigns.models import PendingSend, Touch
from customers.models import Event, Order, Profile
from customers.normalise import sha256_identifier
from privacy.models import AuditEntry, DataSubjectRequest
from tests.privacy.people import EMAIL, PHONE, columns_holding, everywhere, files_holding, url


def test_erasure_leaves_the_persons_email_and_phone_nowhere(workspace, officer, media):
    claire, bob, things = everywhere(workspace, officer.user)
    # An access request first: its JSON file holds everything about her, and must go too.
    access = officer.post(url("privacy-request-list"), {"kind": "access", "profile": claire.pk}, format="json")
    officer.post(url("privacy-request-complete", access.json()["id"]))
    assert columns_holding(EMAIL) and columns_holding(PHONE)  # the search does find them before
    assert files_holding(media, EMAIL) and files_holding(media, PHONE)
    orders_before = list(Order.objects.order_by("pk").values_list("amount", "ordered_at", "status"))
    touches_before = Touch.objects.filter(profile=claire).count()

    created = officer.post(
        url("privacy-request-list"),
        {"kind": "erasure", "profile": claire.pk, "subject": EMAIL.upper(), "notes": f"Asked by e-mail ({EMAIL})"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    done = officer.post(url("privacy-request-complete", created.json()["id"]))

    assert done.status_code == 200, done.json()
    body = done.json()
    assert body["status"] == "completed"
    assert body["subject"] == ""
    assert f"email:{sha256_identifier(EMAIL)}" in body["subject_hashes"]
    assert f"phone:{sha256_identifier(PHONE)}" in body["subject_hashes"]
    assert body["outcome"]["consents"] == 3 and body["outcome"]["identities"] >= 3
    assert body["outcome"]["export_files"] == 2 and body["outcome"]["delivery_files"] == 1
    assert columns_holding(EMAIL) == []
    assert columns_holding(PHONE) == []
    assert columns_holding("CRM-CLAIRE") == []
    assert files_holding(media, EMAIL) == []
    assert files_holding(media, PHONE) == []
    # Bob is untouched, in the tables and in the files.
    assert files_holding(media, "bob@example.com")
    assert Profile.objects.get(pk=bob.pk).email == "bob@example.com"
    plain = AudienceExport.objects.get(identifiers="plain")
    assert "bob@example.com" in plain.file.open("rb").read().decode()
    # The aggregates stay, without identity.
    claire.refresh_from_db()
    assert claire.erased_at is not None and claire.external_id == f"erased-{claire.pk}"
    assert list(Order.objects.order_by("pk").values_list("amount", "ordered_at", "status")) == orders_before
    assert Touch.objects.filter(profile=claire).count() == touches_before
    assert Event.objects.filter(profile=claire, properties={}).count() == Event.objects.filter(profile=claire).count()
    assert not AudienceMember.objects.filter(profile=claire).exists()
    assert not Touch.objects.filter(profile=claire, status="pending").exists()
    assert PendingSend.objects.get(profile=claire).status == "cancelled"
    # The tombstone and the audit trail.
    tombstone = DataSubjectRequest.objects.get(pk=created.json()["id"])
    assert tombstone.profile_id == claire.pk and tombstone.notes == "Asked by e-mail ([erased])"
    actions = list(
        AuditEntry.objects.filter(object_type="data_subject_request", object_id=str(tombstone.pk)).values_list(
            "action", flat=True
        )
    )
    assert set(actions) == {"request_created", "request_completed"}


def test_an_erased_person_leaves_every_audience_and_activation(workspace, officer):
    claire, bob, things = everywhere(workspace, officer.user)
    created = officer.post(url("privacy-request-list"), {"kind": "erasure", "profile": claire.pk}, format="json")
    officer.post(url("privacy-request-complete", created.json()["id"]))
    from audiences.services import audience_compute

    audience_compute(segment_id=things["segment"].pk)
    members = officer.get(reverse("segment-members", kwargs={"workspace": "maison", "pk": things["segment"].pk}))
    assert claire.pk not in {m["id"] for m in members.json()["results"]}
    assert bob.pk in {m["id"] for m in members.json()["results"]}
    # Erasing again changes nothing and answers the same.
    again = officer.post(url("privacy-request-complete", created.json()["id"]))
    assert again.status_code == 200 and again.json()["status"] == "completed"


def test_the_access_export_holds_everything_cible_has_on_the_person(workspace, officer, media):
    claire, bob, things = everywhere(workspace, officer.user)
    created = officer.post(url("privacy-request-list"), {"kind": "portability", "profile": claire.pk}, format="json")
    done = officer.post(url("privacy-request-complete", created.json()["id"])).json()
    assert done["status"] == "completed" and done["export_url"]
    response = officer.get(done["export_url"])
    assert response.status_code == 200
    document = json.loads(b"".join(response.streaming_content))
    assert document["profile"]["email"] == EMAIL and document["profile"]["external_id"] == "CRM-CLAIRE"
    assert {i["value"] for i in document["identities"]} >= {EMAIL, PHONE}
    assert len(document["events"]) == 3 and len(document["orders"]) == 1
    assert document["orders"][0]["amount"] == "120.00"
    assert len(document["consents"]) == 3
    assert document["survey_responses"][0]["answer"] == f"call me on {PHONE}"
    assert things["segment"].pk in {s["id"] for s in document["segments"]}
    assert {d["status"] for d in document["deliveries"]} == {"sent", "pending"}
    assert {(e["type"], e["channel"]) for e in document["exports"]} == {
        ("audience_export", "email"),
        ("audience_export", "display"),
        ("handoff", "email"),
    }
    assert document["suppressed"] is False
    assert AuditEntry.objects.filter(action="access_downloaded", object_id=str(done["id"])).count() == 1


def test_erasing_a_merged_person_leaves_no_identifier_in_any_spelling(
    workspace, officer, marketer, media, receiver, settings, caplog
):
    """Anne had two profiles (merged), was included by hand in a segment, reached by SMS through a provider
    that refused her number and echoed it, and was sent with idempotency keys built from her ids. After
    erasure none of her identifiers, in any spelling, is in a column, a file, a Redis key or a log line."""
    import logging

    from campaigns.activation import campaign_deliveries, campaign_handoff
    from campaigns.models import Connector, Handoff
    from customers.models import Identity, ImportJob
    from customers.services import profile_merge
    from segments.models import ManualMember
    from tests.factories import make_segment
    from tests.privacy.people import contactable, running

    caplog.set_level(logging.DEBUG)
    settings.CIBLE_WEBHOOK_BACKOFF_SECONDS = 0.01
    handler, hook = receiver
    handler.fail, handler.fail_status = 100, 400
    handler.fail_body = b"invalid recipient +33698765432 (Anne Lefebvre-Quinn)"

    anne = contactable(workspace, "CRM-ANNE", email="Anne.Lefebvre@Example.org", phone="06 98 76 54 32")
    Profile.objects.filter(pk=anne.pk).update(first_name="Anne", last_name="Lefebvre-Quinn")
    Identity.objects.create(workspace=workspace, profile=anne, type="cookie", value="ck-anne-0042")
    web = contactable(workspace, "WEB-ANNE-77", email="anne.lq@example.net", channels=())
    Identity.objects.create(workspace=workspace, profile=web, type="device", value="dev-anne-0042")
    segment = make_segment(workspace=workspace)
    ManualMember.objects.create(workspace=workspace, segment=segment, profile=web, action="include")
    profile_merge(survivor=anne, merged=web)
    # Keys built from her ids, through her former id (the alias) and her current one.
    now = timezone.now().isoformat()
    event = {"external_id": "WEB-ANNE-77", "type": "page_view", "channel": "web", "occurred_at": now}
    order = {
        "external_id": "CRM-ANNE",
        "order_id": "CRM-ANNE-O1",
        "amount": "9.90",
        "ordered_at": now,
        "channel": "web",
    }
    ingest = "/api/workspaces/maison/ingest/"
    r = marketer.post(
        ingest + "events/", {"items": [{**event, "idempotency_key": "WEB-ANNE-77:view:1"}]}, format="json"
    )
    assert r.json()["created"] == 1
    r = marketer.post(ingest + "orders/", {"items": [{**order, "idempotency_key": "CRM-ANNE:order:1"}]}, format="json")
    assert r.json()["created"] == 1
    ImportJob.objects.create(
        workspace=workspace,
        kind="profiles",
        filename="shop.csv",
        content="external_id,phone\nSHOP-1,06 98 76 54 32\nSHOP-2,06 11 11 11 11\n",
        content_sha256="y",
        status="succeeded",
    )
    # An SMS through a provider that refuses her number and echoes it back.
    Connector.objects.create(workspace=workspace, channel="sms", kind="webhook", url=hook, secret="s" * 16)
    campaign = running(workspace, segment, channels=("sms",))
    campaign_deliveries(campaign_id=campaign.pk)
    campaign_handoff(campaign_id=campaign.pk)
    assert Handoff.objects.filter(status="failed").exists() and handler.calls

    spellings = [
        "anne.lefebvre@example.org",
        "anne.lefebvre",  # the e-mail's local part
        "anne.lq@example.net",
        "+33698765432",
        "0698765432",
        "06 98 76 54 32",
        "+33 6 98 76 54 32",
        "CRM-ANNE",
        "WEB-ANNE-77",
        "ck-anne-0042",
        "dev-anne-0042",
        "Lefebvre-Quinn",
    ]
    assert columns_holding("WEB-ANNE-77") and columns_holding("06 98 76 54 32")  # found before
    created = officer.post(url("privacy-request-list"), {"kind": "erasure", "profile": anne.pk}, format="json")
    done = officer.post(url("privacy-request-complete", created.json()["id"]))
    assert done.json()["status"] == "completed", done.json()

    for text in spellings:
        assert columns_holding(text) == [], text
        assert files_holding(media, text) == [], text
        assert not [line for line in caplog.text.splitlines() if text.lower() in line.lower()], text
    assert not ManualMember.objects.filter(profile__in=[anne.pk, web.pk]).exists()
    # The other line of the import file stays.
    assert "SHOP-2" in ImportJob.objects.get(filename="shop.csv").content
    redis_url = getattr(settings, "REDIS_URL", "") or ""
    if redis_url.startswith("redis://"):
        import redis

        store = redis.Redis.from_url(redis_url)
        for key in store.scan_iter(count=1000):
            kind = store.type(key)
            values = [key]
            if kind == b"string":
                values.append(store.get(key) or b"")
            elif kind == b"list":
                values.extend(store.lrange(key, 0, -1))
            elif kind == b"hash":
                values.extend(store.hgetall(key).values())
            blob = b" ".join(values).decode("utf-8", "replace").lower()
            assert not [text for text in spellings if text.lower() in blob], key
