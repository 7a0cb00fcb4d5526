"""Batches of profiles, events and orders: read item by item, written set-based in one transaction."""

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Workspace
from core.personal_data import key_digest
from core.sql import insert_ignore_returning, upsert
from core.statistics import rows_written
from customers.errors import CustomerErrorCode as Code
from customers.followups import events_ingested
from customers.ingestion.readers import (
    EVENT_READERS,
    KEY,
    ORDER_READERS,
    PROFILE_READERS,
    REQUIRED,
    IngestReport,
    ItemError,
    ReadContext,
    attributes_read,
    has_nul,
)
from customers.merging import stitching_lock
from customers.models import (
    AttributeDefinition,
    Event,
    IngestReceipt,
    LifecycleStage,
    Order,
    Profile,
)
from customers.stitching import Claim, NeedsExclusive, Resolution, resolve


def _read_item(
    item: Any, fields: Mapping[str, Callable[[Any, ReadContext], Any]], required: set[str], ctx: ReadContext
) -> tuple[str, dict[str, Any]]:
    errors: dict[str, list[tuple[str, str]]] = {}
    if not isinstance(item, dict):
        raise ItemError({"non_field_errors": [("Expected a JSON object.", Code.INVALID)]})
    try:
        key = key_digest(KEY(item.get("idempotency_key"), ctx))  # only the digest is kept
    except ValidationError as exc:
        errors["idempotency_key"] = [(exc.messages[0], exc.code or Code.INVALID)]
        key = ""
    if "idempotency_key" not in item:
        errors["idempotency_key"] = [("This field is required.", Code.REQUIRED)]
    if has_nul(item):
        # PostgreSQL cannot store NUL in text or JSON: refuse it on the fields that carry it.
        for name, value in item.items():
            if has_nul(name) or has_nul(value):
                errors.setdefault(name, []).append(("NUL characters are not allowed.", Code.NULL_CHARACTER))
        raise ItemError(errors)
    clean: dict[str, Any] = {}
    for name, value in item.items():
        if name == "idempotency_key":
            continue
        reader = fields.get(name)
        if reader is None:
            errors.setdefault(name, []).append(("Unknown field.", Code.UNKNOWN_FIELD))
            continue
        try:
            clean[name] = reader(value, ctx)
        except ValidationError as exc:
            errors.setdefault(name, []).append((exc.messages[0], exc.code or Code.INVALID))
    for name in required - set(item):
        errors.setdefault(name, []).append(("This field is required.", Code.REQUIRED))
    if "external_id" not in required and not clean.get("external_id") and not clean.get("identities"):
        if "external_id" not in errors and "identities" not in errors:
            errors["external_id"] = [(IDENTITY_REQUIRED_MESSAGE, Code.IDENTITY_REQUIRED)]
    if ("latitude" in clean) != ("longitude" in clean) or (
        "latitude" in clean and (clean["latitude"] is None) != (clean["longitude"] is None)
    ):
        errors.setdefault("latitude", []).append(("Give latitude and longitude together.", Code.COORDINATES_PAIR))
    if errors:
        raise ItemError(errors)
    return key, clean


def _read_batch(
    items: list[Any],
    kind: str,
    fields: Mapping[str, Callable[[Any, ReadContext], Any]],
    ctx: ReadContext,
    report: IngestReport,
    positions: dict[str, int] | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Valid items as (key, clean), in order, without the keys repeated inside the batch
    (`positions`, when given, receives each kept key's index in the request)."""
    seen: set[str] = set()
    valid = []
    for index, item in enumerate(items):
        try:
            key, clean = _read_item(item, fields, REQUIRED[kind], ctx)
        except ItemError as exc:
            report.reject(index, exc.errors)
            continue
        if key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        valid.append((key, clean))
        if positions is not None:
            positions[key] = index
    return valid


UNKNOWN_PROFILE_MESSAGE = "No profile has this external id: send the profile first, or set create_missing to true."
IDENTITY_REQUIRED_MESSAGE = (
    "Give an external_id, or identities ({type, value}: a cookie, a device, a loyalty card...) to name the person."
)


def _stitched(report: IngestReport, write: Callable[[IngestReport, bool], IngestReport], workspace: Workspace):
    """Run `write` in one transaction under the workspace's stitching lock, shared; when the batch
    must merge profiles (or a concurrent batch changed its identifiers), run it again holding the
    lock alone, from the same report."""
    for exclusive in (False, True):
        attempt = dataclasses.replace(report, rejected=list(report.rejected))
        try:
            with transaction.atomic():
                stitching_lock(workspace_id=workspace.pk, exclusive=exclusive)
                return write(attempt, exclusive)
        except NeedsExclusive:
            continue
    raise AssertionError("unreachable: the exclusive attempt never needs more")


def _claims(valid: list[tuple[str, dict[str, Any]]]) -> list[Claim]:
    return [Claim(key, clean.get("external_id", ""), clean.get("identities", [])) for key, clean in valid]


def _resolved(
    workspace: Workspace,
    valid: list[tuple[str, dict[str, Any]]],
    positions: Mapping[str, int],
    report: IngestReport,
    exclusive: bool,
    create_missing: bool,
    source: str,
) -> tuple[Resolution, list[tuple[str, dict[str, Any]]]]:
    """The person of each event or order (stitched), and the items kept: without create_missing,
    those about nobody known are rejected. The report counts the profiles created and merged."""
    resolution = resolve(
        workspace=workspace, claims=_claims(valid), source=source, exclusive=exclusive, create=create_missing
    )
    if not create_missing:
        valid = _known_only(valid, resolution, positions, report)
    report.profiles_created = len(resolution.created)
    report.profiles_merged = resolution.merged
    return resolution, valid


def _items_ingest(
    workspace: Workspace,
    items: list[Any],
    kind: str,
    readers: Mapping[str, Callable[[Any, ReadContext], Any]],
    write: Callable[..., IngestReport],
    create_missing: bool,
) -> IngestReport:
    """Events or orders: read the batch, then `write` the valid items under the stitching lock."""
    report = IngestReport(received=len(items))
    positions: dict[str, int] = {}
    valid = _read_batch(items, kind, readers, _context(workspace), report, positions)
    if not valid:
        return report
    return _stitched(
        report,
        lambda report, exclusive: write(workspace, valid, positions, report, exclusive, create_missing),
        workspace,
    )


def _known_only(
    valid: list[tuple[str, dict[str, Any]]], resolution: Resolution, positions: Mapping[str, int], report: IngestReport
) -> list[tuple[str, dict[str, Any]]]:
    """Without create_missing: items about people Cible does not know are refused, not written."""
    named = {key for key, clean in valid if clean.get("external_id")}
    for key in resolution.unknown:
        field = "external_id" if key in named else "identities"
        report.reject(positions[key], {field: [(UNKNOWN_PROFILE_MESSAGE, Code.UNKNOWN_PROFILE)]})
    return [(key, clean) for key, clean in valid if key not in resolution.unknown]


def _fresh_keys(workspace: Workspace, kind: str, keys: list[str]) -> set[str]:
    """Record the keys; those already recorded (earlier or by a concurrent batch) are not fresh."""
    now = timezone.now()
    rows = [(workspace.pk, kind, key, now) for key in sorted(keys)]  # sorted: concurrent batches lock in one order
    return set(
        insert_ignore_returning(
            IngestReceipt, ["workspace", "kind", "idempotency_key", "created_at"], rows, returning="idempotency_key"
        )
    )


def _context(workspace: Workspace) -> ReadContext:
    types = dict(AttributeDefinition.objects.filter(workspace=workspace).values_list("key", "type"))
    return ReadContext(workspace, types)


# --- profiles ------------------------------------------------------------------


def profiles_ingest(*, workspace: Workspace, items: list[Any]) -> IngestReport:
    report = IngestReport(received=len(items))
    ctx = _context(workspace)
    valid = _read_batch(items, "profile", PROFILE_READERS, ctx, report)
    return _stitched(report, lambda report, exclusive: _profiles_write(workspace, valid, report, exclusive), workspace)


def _profiles_write(
    workspace: Workspace, valid: list[tuple[str, dict[str, Any]]], report: IngestReport, exclusive: bool
) -> IngestReport:
    fresh = _fresh_keys(workspace, IngestReceipt.Kind.PROFILE, [key for key, _ in valid])
    report.duplicates += len(valid) - len(fresh)
    valid = [(key, clean) for key, clean in valid if key in fresh]
    if not valid:
        return report
    # The person of each item, stitched by its e-mail, phone and identities.
    claims = [
        Claim(
            key,
            clean["external_id"],
            [
                *clean.get("identities", []),
                *((kind, clean[kind]) for kind in ("email", "phone") if clean.get(kind)),
            ],
        )
        for key, clean in valid
    ]
    resolution = resolve(workspace=workspace, claims=claims, source="profiles", exclusive=exclusive)
    external_ids = dict(
        Profile.objects.filter(pk__any=set(resolution.profiles.values())).values_list("id", "external_id")
    )

    # One row per person: later items of the batch override earlier ones.
    merged: dict[str, dict[str, Any]] = {}
    for key, clean in valid:
        external_id = external_ids[resolution.profiles[key]]
        row = merged.setdefault(external_id, {})
        for name, value in clean.items():
            if name == "attributes":
                row["attributes"] = {**row.get("attributes", {}), **value}
            elif name not in ("external_id", "identities"):
                row[name] = value

    # Lock the people we update, in id order, so concurrent batches cannot
    # interleave their attribute merges or deadlock each other.
    existing = {
        external_id: attributes
        for external_id, attributes in Profile.objects.select_for_update()
        .filter(workspace=workspace, external_id__any=merged.keys())
        .order_by("pk")
        .values_list("external_id", "attributes")
    }
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for external_id, row in merged.items():
        if "attributes" in row:
            combined = {**(existing.get(external_id) or {}), **row["attributes"]}
            row["attributes"] = {k: v for k, v in combined.items() if v is not None}
        names = tuple(sorted(row))
        groups.setdefault(names, []).append({**row, "workspace": workspace.pk, "external_id": external_id})
    for names, profiles in groups.items():
        profiles.sort(key=lambda p: p["external_id"])
        upsert(Profile, profiles, unique_fields=["workspace", "external_id"], update_fields=[*names, "updated_at"])
    # A person is created when stitching found nobody for them: the database said which rows were new.
    report.created = len({resolution.profiles[key] for key, _ in valid} & resolution.created)
    report.updated = len(merged) - report.created
    report.profiles_created = report.created
    report.profiles_merged = resolution.merged
    transaction.on_commit(lambda: rows_written(model=Profile, rows=len(merged)))
    return report


# --- events --------------------------------------------------------------------


def events_ingest(*, workspace: Workspace, items: list[Any], create_missing: bool = True) -> IngestReport:
    """Append events. An event names its person by external id, identities (a cookie, a device...)
    or both; one about nobody known creates a profile (anonymous without an external id), or with
    `create_missing` false is rejected. Identifiers seen together stitch profiles by the
    workspace's match rules."""
    return _items_ingest(workspace, items, "event", EVENT_READERS, _events_write, create_missing)


def _events_write(
    workspace: Workspace,
    valid: list[tuple[str, dict[str, Any]]],
    positions: Mapping[str, int],
    report: IngestReport,
    exclusive: bool,
    create_missing: bool,
) -> IngestReport:
    resolution, valid = _resolved(workspace, valid, positions, report, exclusive, create_missing, "events")
    if not valid:
        return report
    now = timezone.now()
    rows = sorted(
        (
            (
                workspace.pk,
                resolution.profiles[key],
                clean["type"],
                clean["channel"],
                clean["occurred_at"],
                now,
                clean.get("properties", {}),
                key,
            )
            for key, clean in valid
        ),
        key=lambda row: row[-1],
    )
    created = insert_ignore_returning(
        Event,
        ["workspace", "profile", "type", "channel", "occurred_at", "received_at", "properties", "idempotency_key"],
        rows,
        returning="id",
    )
    if created:
        transaction.on_commit(lambda: events_ingested(workspace_id=workspace.pk, event_ids=list(created)))
        transaction.on_commit(lambda: rows_written(model=Event, rows=len(created)))
    report.created = len(created)
    report.duplicates += len(valid) - len(created)
    return report


# --- orders --------------------------------------------------------------------


def orders_ingest(*, workspace: Workspace, items: list[Any], create_missing: bool = True) -> IngestReport:
    """Upsert orders by order id. An order names its person as an event does; one about nobody known
    creates a profile, or with `create_missing` false is rejected (and keeps no receipt, so it can
    be sent again)."""
    return _items_ingest(workspace, items, "order", ORDER_READERS, _orders_write, create_missing)


def _orders_write(
    workspace: Workspace,
    valid: list[tuple[str, dict[str, Any]]],
    positions: Mapping[str, int],
    report: IngestReport,
    exclusive: bool,
    create_missing: bool,
) -> IngestReport:
    resolution, valid = _resolved(workspace, valid, positions, report, exclusive, create_missing, "orders")
    fresh = _fresh_keys(workspace, IngestReceipt.Kind.ORDER, [key for key, _ in valid])
    report.duplicates += len(valid) - len(fresh)
    valid = [(key, clean) for key, clean in valid if key in fresh]
    if not valid:
        return report
    by_order: dict[str, dict[str, Any]] = {}
    for key, clean in valid:
        by_order[clean["order_id"]] = {**clean, "profile": resolution.profiles[key]}
    existing = set(
        Order.objects.filter(workspace=workspace, order_id__any=by_order.keys()).values_list("order_id", flat=True)
    )
    orders = [
        {
            "workspace": workspace.pk,
            "profile": row["profile"],
            "order_id": order_id,
            "amount": row["amount"],
            "currency": row.get("currency") or workspace.currency,
            "ordered_at": row["ordered_at"],
            "channel": row["channel"],
            "status": row.get("status", Order.Status.COMPLETED),
            "items": row.get("items", []),
        }
        for order_id, row in sorted(by_order.items())
    ]
    inserted = upsert(
        Order,
        orders,
        unique_fields=["workspace", "order_id"],
        update_fields=["profile", "amount", "currency", "ordered_at", "channel", "status", "items", "updated_at"],
        count_inserted=True,
    )
    transaction.on_commit(lambda: rows_written(model=Order, rows=len(orders)))
    # A prospect who orders becomes a customer.
    buyers = [order["profile"] for order in orders if order["status"] == Order.Status.COMPLETED]
    Profile.objects.filter(pk__any=buyers, lifecycle_stage=LifecycleStage.PROSPECT).update(
        lifecycle_stage=LifecycleStage.CUSTOMER
    )
    # As for profiles: an order a concurrent batch inserted first is counted as updated here.
    report.created = inserted if connection.vendor == "postgresql" else len(by_order) - len(existing)
    report.updated = len(by_order) - report.created
    return report


INGESTERS = {"profiles": profiles_ingest, "events": events_ingest, "orders": orders_ingest}


def attributes_validate(*, workspace: Workspace, value: Any) -> dict[str, Any]:
    """Attribute values checked against the workspace's definitions (for single-profile writes)."""
    if has_nul(value):
        raise ValidationError(gettext("NUL characters are not allowed."), code=Code.NULL_CHARACTER)
    clean = attributes_read(value, _context(workspace))
    return {key: item for key, item in clean.items() if item is not None}
