"""core.sql and core.lookups on both databases: staged inserts keep the rows' order and skip
conflicts, upserts insert with defaults and update only what they name, `__any` matches lists."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from core.sql import insert_ignore_returning, upsert
from customers.models import Event, Order, Profile
from tests.factories import make_profile, make_workspace

pytestmark = pytest.mark.django_db


def test_insert_ignore_returning_skips_conflicts_and_returns_the_new_rows_in_order():
    workspace = make_workspace()
    profile = make_profile(workspace=workspace, external_id="C1")
    at = datetime(2026, 11, 1, 10, tzinfo=UTC)
    fields = ["workspace", "profile", "type", "channel", "occurred_at", "received_at", "properties", "idempotency_key"]

    def row(key: str, properties: dict) -> tuple:
        return (workspace.pk, profile.pk, "page_view", "web", at, at, properties, key)

    first = insert_ignore_returning(Event, fields, [row("b", {"n": 1}), row("a", {"n": [1, "é"]})], returning="id")
    again = insert_ignore_returning(
        Event, fields, [row("c", {}), row("a", {"n": 2}), row("d", {"big": 2**70})], returning="idempotency_key"
    )
    assert len(first) == 2 and first[0] < first[1]
    assert again == ["c", "d"]
    assert dict(Event.objects.values_list("idempotency_key", "properties")) == {
        "b": {"n": 1},
        "a": {"n": [1, "é"]},
        "c": {},
        "d": {"big": 2**70},
    }


def test_upsert_inserts_with_defaults_and_updates_only_the_named_fields():
    workspace = make_workspace()
    existing = make_profile(workspace=workspace, external_id="C1", first_name="Ana", city="Lyon")
    before = Profile.objects.get(pk=existing.pk).updated_at
    written = upsert(
        Profile,
        [
            {"workspace": workspace.pk, "external_id": "C1", "first_name": "Anna", "city": "Paris"},
            {"workspace": workspace.pk, "external_id": "C2", "first_name": "Léa", "attributes": {"vip": True}},
        ],
        unique_fields=["workspace", "external_id"],
        update_fields=["first_name", "updated_at"],
    )
    assert written == 2
    updated = Profile.objects.get(pk=existing.pk)
    assert (updated.first_name, updated.city) == ("Anna", "Lyon")  # city was not named: kept
    assert updated.updated_at > before and updated.created_at == existing.created_at
    new = Profile.objects.get(workspace=workspace, external_id="C2")
    assert (new.first_name, new.lifecycle_stage, new.gender, new.attributes) == (
        "Léa",
        "prospect",
        "unknown",
        {"vip": True},
    )
    assert new.birth_date is None and new.latitude is None and new.created_at is not None


def test_upsert_of_orders_keeps_exact_money_and_items():
    workspace = make_workspace()
    profile = make_profile(workspace=workspace, external_id="C1")
    row = {
        "workspace": workspace.pk,
        "profile": profile.pk,
        "order_id": "O1",
        "amount": Decimal("13.97"),
        "currency": "EUR",
        "ordered_at": datetime(2026, 11, 1, tzinfo=UTC),
        "channel": "web",
        "status": "completed",
        "items": [{"sku": "A", "quantity": 2}],
    }
    upsert(Order, [row], unique_fields=["workspace", "order_id"], update_fields=["amount"])
    upsert(
        Order, [{**row, "amount": Decimal("0.30")}], unique_fields=["workspace", "order_id"], update_fields=["amount"]
    )
    order = Order.objects.get()
    assert (order.amount, order.items) == (Decimal("0.30"), [{"sku": "A", "quantity": 2}])


def test_any_lookup_matches_texts_and_ids_like_in():
    workspace = make_workspace()
    profiles = [make_profile(workspace=workspace, external_id=f"C{i}") for i in range(5)]
    wanted = {"C1", "C3", "nobody"}
    assert set(Profile.objects.filter(external_id__any=wanted).values_list("external_id", flat=True)) == {"C1", "C3"}
    ids = [profiles[0].pk, profiles[4].pk, 10**12]
    assert set(Profile.objects.filter(pk__any=ids)) == {profiles[0], profiles[4]}
    assert not Profile.objects.filter(pk__any=[]).exists()
    assert Profile.objects.filter(external_id__any=[]).count() == 0
