import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from customers.models import AttributeDefinition, Event, Identity, IngestReceipt, Order, Profile
from tests.factories import make_profile


def url(name, ws="maison"):
    return reverse(f"ingest-{name}", kwargs={"workspace": ws})


def test_profiles_are_created_then_updated_by_external_id_with_only_the_fields_sent(marketer, workspace):
    AttributeDefinition.objects.create(workspace=workspace, key="interests", label="Interests", type="string_list")
    first = [
        {
            "idempotency_key": "a1",
            "external_id": "C1",
            "first_name": " Camille ",
            "email": "Camille.Martin@Example.COM ",
            "phone": "06 12 34 56 78",
            "birth_date": "1990-04-02",
            "gender": "female",
            "city": "Lyon",
            "region": "Auvergne-Rhone-Alpes",
            "country": "fr",
            "latitude": 45.76,
            "longitude": 4.84,
            "attributes": {"interests": ["running", "wine"]},
            "identities": [{"type": "cookie", "value": "ck-1"}],
        }
    ]
    r = marketer.post(url("profiles"), {"items": first}, format="json")
    assert r.status_code == 200
    assert r.json() == {
        "received": 1,
        "created": 1,
        "updated": 0,
        "duplicates": 0,
        "profiles_created": 1,
        "profiles_merged": 0,
        "rejected": [],
    }
    profile = Profile.objects.get(workspace=workspace, external_id="C1")
    assert (profile.first_name, profile.email, profile.phone, profile.country) == (
        "Camille",
        "camille.martin@example.com",
        "+33612345678",
        "FR",
    )
    assert set(Identity.objects.filter(profile=profile).values_list("type", "value")) == {
        ("email", "camille.martin@example.com"),
        ("phone", "+33612345678"),
        ("cookie", "ck-1"),
    }

    r = marketer.post(
        url("profiles"), {"items": [{"idempotency_key": "a2", "external_id": "C1", "city": "Paris"}]}, format="json"
    )
    assert r.json() == {
        "received": 1,
        "created": 0,
        "updated": 1,
        "duplicates": 0,
        "profiles_created": 0,
        "profiles_merged": 0,
        "rejected": [],
    }
    profile.refresh_from_db()
    assert (profile.city, profile.first_name, profile.attributes) == (
        "Paris",
        "Camille",
        {"interests": ["running", "wine"]},
    )


def test_replaying_a_batch_adds_nothing_and_counts_duplicates(marketer, workspace):
    items = [{"idempotency_key": f"k{i}", "external_id": f"C{i}", "last_name": "Durand"} for i in range(5)]
    assert marketer.post(url("profiles"), {"items": items}, format="json").json()["created"] == 5
    r = marketer.post(url("profiles"), {"items": items}, format="json")
    assert r.json() == {
        "received": 5,
        "created": 0,
        "updated": 0,
        "duplicates": 5,
        "profiles_created": 0,
        "profiles_merged": 0,
        "rejected": [],
    }
    assert Profile.objects.filter(workspace=workspace).count() == 5


def test_idempotency_keys_are_kept_only_as_digests(marketer, workspace):
    """Clients build keys from their customer ids: no key is stored as sent, replays still count."""
    from core.personal_data import key_digest

    now = timezone.now().isoformat()
    event = {"idempotency_key": "C123:view:1", "external_id": "C123", "type": "page_view", "channel": "web"}
    order = {"idempotency_key": "C123:order:1", "external_id": "C123", "order_id": "A9", "amount": "5.00"}
    profile = {"idempotency_key": "C123:profile", "external_id": "C123", "first_name": "Ann"}
    for kind, item in (
        ("profiles", profile),
        ("events", {**event, "occurred_at": now}),
        ("orders", {**order, "ordered_at": now, "channel": "web"}),
    ):
        assert marketer.post(url(kind), {"items": [item]}, format="json").json()["created"] == 1
        assert marketer.post(url(kind), {"items": [item]}, format="json").json()["duplicates"] == 1
    stored = set(Event.objects.values_list("idempotency_key", flat=True)) | set(
        IngestReceipt.objects.values_list("idempotency_key", flat=True)
    )
    assert stored == {key_digest("C123:view:1"), key_digest("C123:order:1"), key_digest("C123:profile")}
    assert not any("C123" in key for key in stored)


def test_the_migration_digests_the_keys_already_stored(workspace):
    """customers 0007 on rows written before it, set-based on both databases."""
    import importlib
    from types import SimpleNamespace

    from core.personal_data import key_digest

    person = make_profile(workspace=workspace)
    Event.objects.create(
        workspace=workspace,
        profile=person,
        type="page_view",
        channel="web",
        occurred_at=timezone.now(),
        idempotency_key="C9:1",
    )
    IngestReceipt.objects.create(workspace=workspace, kind="order", idempotency_key="C9:order")
    migration = importlib.import_module("customers.migrations.0007_idempotency_key_digests")
    migration.digest_keys(None, SimpleNamespace(connection=connection))
    assert Event.objects.get().idempotency_key == key_digest("C9:1")
    assert IngestReceipt.objects.get().idempotency_key == key_digest("C9:order")


def test_each_rejected_item_is_reported_by_index_with_field_and_reason_while_valid_items_land(marketer, workspace):
    now = timezone.now().isoformat()
    items = [
        {"idempotency_key": "e0", "external_id": "C1", "type": "page_view", "channel": "web", "occurred_at": now},
        {"idempotency_key": "e1", "external_id": "C1", "type": "teleport", "channel": "web", "occurred_at": now},
        {
            "idempotency_key": "e2",
            "external_id": "C1",
            "type": "page_view",
            "channel": "web",
            "occurred_at": "yesterday",
        },
        {"external_id": "C1", "type": "page_view", "channel": "web", "occurred_at": now, "colour": "red"},
        "not an object",
        {
            "idempotency_key": "e5",
            "external_id": "C2",
            "type": "cart_abandoned",
            "channel": "app",
            "occurred_at": now,
            "properties": {"sku": "SKU-1"},
        },
    ]
    r = marketer.post(url("events"), {"items": items}, format="json")
    assert r.status_code == 200
    body = r.json()
    assert (body["received"], body["created"], body["duplicates"]) == (6, 2, 0)
    rejected = {entry["index"]: entry["errors"] for entry in body["rejected"]}
    assert set(rejected) == {1, 2, 3, 4}
    assert rejected[1]["type"][0]["code"] == "invalid_choice"
    assert rejected[2]["occurred_at"][0]["code"] == "invalid_datetime"
    assert rejected[3] == {
        "idempotency_key": [{"message": "This field is required.", "code": "required"}],
        "colour": [{"message": "Unknown field.", "code": "unknown_field"}],
    }
    assert rejected[4]["non_field_errors"][0]["code"] == "invalid"
    assert Event.objects.filter(workspace=workspace).count() == 2
    # An event for a person not yet known creates the profile.
    assert Profile.objects.filter(workspace=workspace, external_id="C2").exists()


def test_typed_attributes_are_checked_against_their_definitions(marketer, workspace):
    AttributeDefinition.objects.create(workspace=workspace, key="household_size", label="Household", type="number")
    items = [
        {"idempotency_key": "1", "external_id": "C1", "attributes": {"household_size": "three"}},
        {"idempotency_key": "2", "external_id": "C2", "attributes": {"shoe_size": 42}},
        {"idempotency_key": "3", "external_id": "C3", "attributes": {"household_size": 3}},
    ]
    body = marketer.post(url("profiles"), {"items": items}, format="json").json()
    assert [(e["index"], e["errors"]["attributes"][0]["code"]) for e in body["rejected"]] == [
        (0, "invalid"),
        (1, "unknown_attribute"),
    ]
    assert Profile.objects.get(external_id="C3").attributes == {"household_size": 3}


def test_orders_upsert_by_order_id_and_turn_a_prospect_into_a_customer(marketer, workspace):
    profile = make_profile(workspace=workspace, external_id="C1")
    assert profile.lifecycle_stage == "prospect"
    order = {
        "idempotency_key": "o1",
        "external_id": "C1",
        "order_id": "ORD-1",
        "amount": "59.90",
        "ordered_at": "2026-01-15T10:00:00+01:00",
        "channel": "web",
        "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "29.95"}],
    }
    body = marketer.post(url("orders"), {"items": [order]}, format="json").json()
    assert (body["created"], body["updated"], body["rejected"]) == (1, 0, [])
    body = marketer.post(
        url("orders"), {"items": [{**order, "idempotency_key": "o2", "status": "refunded"}]}, format="json"
    ).json()
    assert (body["created"], body["updated"]) == (0, 1)
    saved = Order.objects.get(workspace=workspace, order_id="ORD-1")
    assert (str(saved.amount), saved.currency, saved.status) == ("59.90", "EUR", "refunded")
    profile.refresh_from_db()
    assert profile.lifecycle_stage == "customer"
    bad = marketer.post(
        url("orders"), {"items": [{**order, "idempotency_key": "o3", "amount": "-1"}]}, format="json"
    ).json()
    assert bad["rejected"][0]["errors"]["amount"][0]["code"] == "out_of_range"


def test_a_batch_over_ten_thousand_items_is_refused_with_413(marketer, workspace):
    items = [{"idempotency_key": str(i), "external_id": "C"} for i in range(10_001)]
    r = marketer.post(url("profiles"), {"items": items}, format="json")
    assert r.status_code == 413
    assert r.json()["code"] == "request_too_large"
    assert not Profile.objects.exists()


def test_a_body_over_the_upload_limit_is_refused_with_413(marketer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    r = marketer.post(url("profiles"), {"items": [{"idempotency_key": "x" * 2_000}]}, format="json")
    assert r.status_code == 413


@pytest.mark.parametrize("body", [{"items": "nope"}, {"rows": []}, [1, 2]])
def test_a_body_without_an_items_list_is_a_400_naming_the_field(marketer, body):
    r = marketer.post(url("profiles"), body, format="json")
    assert r.status_code == 400
    assert r.json()["items"] == [{"message": "Expected a list of items.", "code": "not_a_list"}]
    if isinstance(body, dict) and "rows" in body:
        assert r.json()["rows"] == [{"message": "Unknown field.", "code": "unknown_field"}]


def test_create_missing_is_an_explicit_choice_reported_in_profiles_created(marketer, workspace):
    now = timezone.now().isoformat()
    make_profile(workspace=workspace, external_id="known")
    events = [
        {"idempotency_key": "e1", "external_id": "known", "type": "page_view", "channel": "web", "occurred_at": now},
        {"idempotency_key": "e2", "external_id": "ghost", "type": "page_view", "channel": "web", "occurred_at": now},
    ]
    r = marketer.post(url("events"), {"items": events, "create_missing": False}, format="json")
    assert r.status_code == 200
    body = r.json()
    assert (body["created"], body["profiles_created"]) == (1, 0)
    assert body["rejected"] == [
        {
            "index": 1,
            "errors": {
                "external_id": [
                    {
                        "message": "No profile has this external id: send the profile first, or set create_missing to true.",
                        "code": "unknown_profile",
                    }
                ]
            },
        }
    ]
    assert not Profile.objects.filter(external_id="ghost").exists()
    # The default keeps today's behaviour: a bare profile, counted.
    r = marketer.post(url("events"), {"items": events}, format="json")
    assert (r.json()["created"], r.json()["duplicates"], r.json()["profiles_created"]) == (1, 1, 1)
    assert Event.objects.filter(profile__external_id="ghost").count() == 1
    # Orders: the refused item keeps no receipt, so it can be sent again once the person exists.
    order = {
        "idempotency_key": "o1",
        "external_id": "newcomer",
        "order_id": "A1",
        "amount": "10.00",
        "ordered_at": now,
        "channel": "web",
    }
    r = marketer.post(url("orders"), {"items": [order], "create_missing": False}, format="json")
    assert r.json()["rejected"][0]["errors"]["external_id"][0]["code"] == "unknown_profile"
    assert not IngestReceipt.objects.filter(idempotency_key="o1").exists()
    r = marketer.post(url("orders"), {"items": [order]}, format="json")
    assert (r.json()["created"], r.json()["profiles_created"]) == (1, 1)
    assert Order.objects.get(order_id="A1").profile.external_id == "newcomer"
    for bad in ({"items": [], "create_missing": "no"}, {"items": [], "create_mising": False}):
        assert marketer.post(url("orders"), bad, format="json").status_code == 400
    # profiles have nothing to create missing
    assert marketer.post(url("profiles"), {"items": [], "create_missing": False}, format="json").status_code == 400


def test_malformed_json_is_a_400(marketer):
    r = marketer.post(url("events"), data="{not json", content_type="application/json")
    assert r.status_code == 400
    assert r.json()["code"] == "parse_error"


def test_ten_thousand_events_land_in_one_request(marketer, workspace):
    at = (timezone.now() - timedelta(hours=1)).isoformat()
    items = [
        {
            "idempotency_key": f"e{i}",
            "external_id": f"C{i % 100}",
            "type": "page_view",
            "channel": "web",
            "occurred_at": at,
        }
        for i in range(10_000)
    ]
    body = marketer.post(url("events"), {"items": items}, format="json").json()
    assert (body["created"], body["duplicates"], body["rejected"]) == (10_000, 0, [])
    assert Event.objects.filter(workspace=workspace).count() == 10_000
    assert Profile.objects.filter(workspace=workspace).count() == 100


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["events", "profiles"])
def test_the_same_batch_posted_twice_at_the_same_time_lands_once(kind, client_for, workspace):
    at = timezone.now().isoformat()
    if kind == "events":
        items = [
            {
                "idempotency_key": f"k{i}",
                "external_id": f"C{i}",
                "type": "page_view",
                "channel": "web",
                "occurred_at": at,
            }
            for i in range(2_000)
        ]
    else:
        items = [{"idempotency_key": f"k{i}", "external_id": f"C{i}", "city": "Lyon"} for i in range(2_000)]
    clients = [client_for("marketer"), client_for("marketer")]
    barrier = threading.Barrier(2)
    results = []

    def post(client):
        barrier.wait()
        try:
            results.append(client.post(url(kind), {"items": items}, format="json").json())
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["created"] for r in results) == [0, 2_000]
    assert sorted(r["duplicates"] for r in results) == [0, 2_000]
    if kind == "events":
        assert Event.objects.filter(workspace=workspace).count() == 2_000
    else:
        assert IngestReceipt.objects.filter(workspace=workspace).count() == 2_000
    assert Profile.objects.filter(workspace=workspace).count() == 2_000


def test_a_viewer_cannot_ingest(viewer, workspace):
    r = viewer.post(url("profiles"), {"items": []}, format="json")
    assert r.status_code == 403
    assert r.json()["code"] == "permission_denied"


def test_ingesting_into_another_workspace_is_a_404(outsider, workspace):
    r = outsider.post(url("profiles"), {"items": [{"idempotency_key": "1", "external_id": "X"}]}, format="json")
    assert r.status_code == 404
    assert not Profile.objects.filter(workspace=workspace).exists()


def _event(**fields):
    return {
        "idempotency_key": "k",
        "external_id": "C1",
        "type": "page_view",
        "channel": "web",
        "occurred_at": "2026-01-01T10:00:00Z",
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"channel": {}}, "channel", "invalid_choice"),
        ({"type": ["page_view"]}, "type", "invalid_choice"),
        ({"occurred_at": "2020-01-01T25:00:00Z"}, "occurred_at", "invalid_datetime"),
        ({"external_id": "C\u0000"}, "external_id", "null_characters_not_allowed"),
        ({"properties": {"sku\u0000": "x"}}, "properties", "null_characters_not_allowed"),
        ({"properties": {"sku": ["a\u0000"]}}, "properties", "null_characters_not_allowed"),
    ],
)
def test_hostile_event_values_are_rejected_items_not_server_errors(marketer, workspace, fields, field, code):
    body = marketer.post(url("events"), {"items": [_event(**fields)]}, format="json").json()
    assert body["rejected"][0]["errors"][field][0]["code"] == code
    assert not Event.objects.exists()


def test_a_far_offset_is_stored_in_utc(marketer, workspace):
    body = marketer.post(
        url("events"), {"items": [_event(occurred_at="2020-01-01T00:00:00+20:00")]}, format="json"
    ).json()
    assert body["created"] == 1
    event = Event.objects.get()
    assert event.occurred_at.isoformat() == "2019-12-31T04:00:00+00:00"


def test_a_far_offset_in_a_list_filter_is_not_a_server_error(viewer, workspace):
    r = viewer.get(
        reverse("order-list", kwargs={"workspace": "maison"}), {"ordered_after": "2020-01-01T00:00:00+20:00"}
    )
    assert r.status_code == 200
    r = viewer.get(reverse("event-list", kwargs={"workspace": "maison"}), {"occurred_after": "2020-01-01T25:00:00Z"})
    assert r.status_code == 400 and "occurred_after" in r.json()


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"email": "x" * 300 + "@example.com"}, "email", "invalid_email"),
        ({"country": "ÉÉ"}, "country", "invalid"),
        ({"gender": {"f": 1}}, "gender", "invalid_choice"),
        ({"first_name": "A\u0000"}, "first_name", "null_characters_not_allowed"),
    ],
)
def test_hostile_profile_values_are_rejected_items(marketer, workspace, fields, field, code):
    item = {"idempotency_key": "p", "external_id": "C1", **fields}
    body = marketer.post(url("profiles"), {"items": [item]}, format="json").json()
    assert body["rejected"][0]["errors"][field][0]["code"] == code
    assert not Profile.objects.exists()


def test_a_phone_repeated_in_a_batch_reads_the_same_each_time_and_a_bad_one_is_refused_each_time(marketer, workspace):
    items = [
        {"idempotency_key": "ph1", "external_id": "H1", "phone": "06 12 34 56 78"},
        {"idempotency_key": "ph2", "external_id": "H2", "phone": "06 12 34 56 78"},
        {"idempotency_key": "ph3", "external_id": "H3", "phone": "not a phone"},
        {"idempotency_key": "ph4", "external_id": "H4", "phone": "not a phone"},
        {"idempotency_key": "ph5", "external_id": "H5", "identities": [{"type": "phone", "value": "06 12 34 56 78"}]},
    ]
    answer = marketer.post(url("profiles"), {"items": items}, format="json").json()
    assert [r["index"] for r in answer["rejected"]] == [2, 3]
    assert answer["rejected"][0]["errors"] == answer["rejected"][1]["errors"]
    assert answer["rejected"][0]["errors"]["phone"][0]["code"] == "invalid_phone"
    phones = set(Profile.objects.filter(workspace=workspace, phone__gt="").values_list("phone", flat=True))
    assert phones == {"+33612345678"}
    # One number, one person: the three items are stitched into one profile holding it.
    assert Identity.objects.filter(workspace=workspace, type="phone").count() == 1
