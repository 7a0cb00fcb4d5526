from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from customers.models import Event, Identity, Order, Profile, ProfileMerge
from privacy.models import ConsentRecord
from tests.factories import make_consent, make_event, make_order, make_profile


def list_url(name="profile"):
    return reverse(f"{name}-list", kwargs={"workspace": "maison"})


def detail_url(pk, name="profile"):
    return reverse(f"{name}-detail", kwargs={"workspace": "maison", "pk": pk})


def test_create_a_profile_and_read_its_360_view(marketer, workspace):
    r = marketer.post(
        list_url(),
        {
            "external_id": "C1",
            "first_name": "Léa",
            "email": "Lea@Example.com",
            "phone": "06 11 22 33 44",
            "birth_date": "1990-06-01",
            "gender": "female",
            "socio_professional_category": "executive",
            "city": "Lyon",
            "postal_code": "69003",
            "region": "Auvergne-Rhone-Alpes",
            "country": "FR",
            "latitude": 45.76,
            "longitude": 4.84,
        },
        format="json",
    )
    assert r.status_code == 201, r.json()
    profile = Profile.objects.get(workspace=workspace, external_id="C1")
    assert (profile.email, profile.phone) == ("lea@example.com", "+33611223344")
    make_order(profile=profile, amount="30.00")
    make_event(profile=profile, type="cart_abandoned")
    body = marketer.get(detail_url(profile.pk)).json()
    assert body["age"] == profile.age
    assert {(i["type"], i["value"]) for i in body["identities"]} == {
        ("email", "lea@example.com"),
        ("phone", "+33611223344"),
    }
    assert body["summary"]["orders_count"] == 1
    assert body["summary"]["orders_total"] == "30.00"
    assert body["summary"]["events_count"] == 1


def test_validation_errors_name_the_field_with_a_code(marketer, workspace):
    make_profile(workspace=workspace, external_id="C1")
    r = marketer.post(
        list_url(),
        {"external_id": "C1", "gender": "robot", "latitude": 95, "phone": "12", "birth_date": "2999-01-01"},
        format="json",
    )
    assert r.status_code == 400
    body = r.json()
    assert body["gender"][0]["code"] == "invalid_choice"
    assert body["latitude"][0]["code"] == "max_value"
    assert body["phone"][0]["code"] == "invalid_phone"
    assert body["birth_date"][0]["code"] == "out_of_range"
    r = marketer.post(list_url(), {"external_id": "C1"}, format="json")
    assert r.status_code == 409  # a duplicate conflicts with a row: the same answer as when two race
    assert r.json() == {
        "external_id": [{"message": "A profile with this external id exists already.", "code": "unique"}]
    }
    r = marketer.post(list_url(), {"external_id": "C2", "latitude": 45.0}, format="json")
    assert r.status_code == 400
    assert r.json() == {"latitude": [{"message": "Give latitude and longitude together.", "code": "coordinates_pair"}]}
    r = marketer.post(list_url(), {"external_id": "C3", "latitude": 45.0, "longitude": False}, format="json")
    assert r.status_code == 400 and r.json()["longitude"][0]["code"] == "invalid"
    assert Profile.objects.filter(workspace=workspace).count() == 1


def test_filters_on_the_profile_list(viewer, workspace):
    today = timezone.localdate()
    young = make_profile(
        workspace=workspace, birth_date=today - timedelta(days=25 * 365), city="Lyon", postal_code="69003"
    )
    make_profile(workspace=workspace, birth_date=today - timedelta(days=60 * 365), city="Paris", postal_code="75011")
    ids = lambda q: [p["id"] for p in viewer.get(list_url(), q).json()["results"]]  # noqa: E731
    assert ids({"age_max": 30}) == [young.pk]
    assert ids({"postal_code_prefix": "69"}) == [young.pk]
    assert ids({"city": "lyon"}) == [young.pk]
    r = viewer.get(list_url(), {"age_min": "old"})
    assert r.status_code == 400 and "age_min" in r.json()
    r = viewer.get(list_url(), {"page_size": 10_000})  # beyond the maximum: said, not silently cut down
    assert r.status_code == 400 and "500" in r.json()["page_size"][0]["message"]


def test_page_size_is_a_whole_number_up_to_the_maximum(viewer, workspace):
    Profile.objects.bulk_create([Profile(workspace=workspace, external_id=f"C{i}") for i in range(600)])
    body = viewer.get(list_url(), {"page_size": 500}).json()
    assert (body["count"], len(body["results"])) == (600, 500)
    assert len(viewer.get(list_url(), {"page_size": ""}).json()["results"]) == 50  # empty: the default
    for bad in ("501", "0", "-1", "1.5", "abc", "\u0663"):
        r = viewer.get(list_url(), {"page_size": bad})
        assert r.status_code == 400 and list(r.json()) == ["page_size"], bad
    cursor = viewer.get(list_url("event"), {"page_size": "0"})
    assert cursor.status_code == 400 and "page_size" in cursor.json()


def test_merge_moves_history_to_the_survivor_and_keeps_the_old_external_id_as_an_alias(client_for, workspace):
    manager = client_for("manager")
    survivor = make_profile(workspace=workspace, external_id="CRM-1", first_name="Léa")
    other = make_profile(workspace=workspace, external_id="WEB-9", email="lea@example.com", city="Lyon")
    Identity.objects.create(workspace=workspace, profile=other, type="cookie", value="ck-9")
    make_event(profile=other)
    make_order(profile=other)
    make_consent(profile=other)
    r = manager.post(reverse("profile-merge", kwargs={"workspace": "maison", "pk": survivor.pk}), {"other": other.pk})
    assert r.status_code == 200
    assert (r.json()["email"], r.json()["city"], r.json()["first_name"]) == ("lea@example.com", "Lyon", "Léa")
    assert not Profile.objects.filter(pk=other.pk).exists()
    for model in (Event, Order, ConsentRecord, Identity):
        assert model.objects.filter(profile=survivor).count() == 1
    merge = ProfileMerge.objects.get(merged_external_id="WEB-9")
    assert merge.moved == {
        "events": 1,
        "orders": 1,
        "identities": 1,
        "survey_responses": 0,
        "aliases": 0,
        # moved by the apps that listen to the merge
        "consents": 1,
        "privacy_requests": 0,
        "removal_notices": 0,
        "manual_memberships": 0,
        "audience_memberships": 0,
        "export_memberships": 0,
        "touches": 0,
        "triggered_sends": 0,
        "channel_preferences": 0,
        "clicks": 0,
        "profile_features": 0,
        "rfm_scores": 0,
        "persona_memberships": 0,
        "model_scores": 0,
        "lookalike_memberships": 0,
        "clv_scores": 0,
    }
    # Later data sent under the old external id goes to the survivor.
    r = manager.post(
        reverse("ingest-events", kwargs={"workspace": "maison"}),
        {
            "items": [
                {
                    "idempotency_key": "x",
                    "external_id": "WEB-9",
                    "type": "app_open",
                    "channel": "app",
                    "occurred_at": timezone.now().isoformat(),
                }
            ]
        },
        format="json",
    )
    assert r.json()["created"] == 1
    assert Event.objects.filter(profile=survivor).count() == 2
    assert not Profile.objects.filter(external_id="WEB-9").exists()


def test_merging_a_profile_into_itself_or_from_another_workspace_is_refused(client_for, workspace, other_workspace):
    manager = client_for("manager")
    mine = make_profile(workspace=workspace)
    theirs = make_profile(workspace=other_workspace)
    url = reverse("profile-merge", kwargs={"workspace": "maison", "pk": mine.pk})
    assert manager.post(url, {"other": mine.pk}).json()["other"][0]["code"] == "same_profile"
    assert manager.post(url, {"other": theirs.pk}).json()["other"][0]["code"] == "does_not_exist"
    assert Profile.objects.filter(pk=theirs.pk).exists()


def test_attribute_definitions_type_cannot_change(marketer, workspace):
    r = marketer.post(
        list_url("attribute-definition"), {"key": "interests", "label": "Interests", "type": "string_list"}
    )
    assert r.status_code == 201
    r2 = marketer.patch(detail_url(r.json()["id"], "attribute-definition"), {"type": "number"})
    assert r2.status_code == 400 and r2.json()["type"][0]["code"] == "immutable"
    r3 = marketer.post(list_url("attribute-definition"), {"key": "Bad Key", "label": "x", "type": "string"})
    assert r3.status_code == 400 and "key" in r3.json()


def test_survey_responses_accept_typed_answers(marketer, workspace):
    profile = make_profile(workspace=workspace)
    payload = {
        "profile": profile.pk,
        "survey": "nps_2026",
        "question": "score",
        "answered_at": timezone.now().isoformat(),
    }
    assert marketer.post(list_url("survey-response"), {**payload, "answer": 9}, format="json").status_code == 201
    assert (
        marketer.post(list_url("survey-response"), {**payload, "answer": ["a", "b"]}, format="json").status_code == 201
    )
    r = marketer.post(list_url("survey-response"), {**payload, "answer": {"nested": 1}}, format="json")
    assert r.status_code == 400 and r.json()["answer"][0]["code"] == "invalid"


def test_events_list_is_cursor_paginated_newest_first(viewer, workspace):
    profile = make_profile(workspace=workspace)
    now = timezone.now()
    for hours in range(5):
        make_event(profile=profile, occurred_at=now - timedelta(hours=hours))
    body = viewer.get(list_url("event"), {"page_size": 2}).json()
    assert len(body["results"]) == 2 and body["next"]
    assert body["results"][0]["occurred_at"] > body["results"][1]["occurred_at"]


def test_age_of_a_profile_without_birth_date_is_null(viewer, workspace):
    profile = make_profile(workspace=workspace)
    assert viewer.get(detail_url(profile.pk)).json()["age"] is None
