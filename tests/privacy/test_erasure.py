"""Erasure: the person's e-mail and phone are nowhere afterwards, in any column of any table or in any
file, while the aggregates stay and the request stays as a tombstone."""

import json

from django.urls import reverse

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
