"""Batches of profiles, events and orders: read item by item, written set-based in one transaction."""

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
from customers.models import (
    AttributeDefinition,
    Event,
    Identity,
    IngestReceipt,
    LifecycleStage,
    Order,
    Profile,
    ProfileMerge,
)


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


def _known_only(
    workspace: Workspace,
    valid: list[tuple[str, dict[str, Any]]],
    aliases: Mapping[str, str],
    positions: Mapping[str, int],
    report: IngestReport,
) -> list[tuple[str, dict[str, Any]]]:
    """Without create_missing: items about people Cible does not know are refused, not written."""
    wanted = {aliases.get(clean["external_id"], clean["external_id"]) for _, clean in valid}
    known = set(
        Profile.objects.filter(workspace=workspace, external_id__any=wanted).values_list("external_id", flat=True)
    )
    kept = []
    for key, clean in valid:
        if aliases.get(clean["external_id"], clean["external_id"]) in known:
            kept.append((key, clean))
        else:
            report.reject(positions[key], {"external_id": [(UNKNOWN_PROFILE_MESSAGE, Code.UNKNOWN_PROFILE)]})
    return kept


def _fresh_keys(workspace: Workspace, kind: str, keys: list[str]) -> set[str]:
    """Record the keys; those already recorded (earlier or by a concurrent batch) are not fresh."""
    now = timezone.now()
    rows = [(workspace.pk, kind, key, now) for key in sorted(keys)]  # sorted: concurrent batches lock in one order
    return set(
        insert_ignore_returning(
            IngestReceipt, ["workspace", "kind", "idempotency_key", "created_at"], rows, returning="idempotency_key"
        )
    )


def _resolve_aliases(workspace: Workspace, external_ids: set[str]) -> dict[str, str]:
    """external id of a merged profile -> its survivor's external id."""
    return dict(
        ProfileMerge.objects.filter(workspace=workspace, merged_external_id__any=external_ids).values_list(
            "merged_external_id", "survivor__external_id"
        )
    )


def _profile_ids(workspace: Workspace, external_ids: set[str], report: IngestReport) -> dict[str, int]:
    """external id -> profile id; a profile first seen through its events or orders is created bare
    (counted in the report's profiles_created; one created by a concurrent batch is not)."""
    ids = dict(
        Profile.objects.filter(workspace=workspace, external_id__any=external_ids).values_list("external_id", "id")
    )
    missing = external_ids - ids.keys()
    if missing:
        columns = [f for f in Profile._meta.concrete_fields if not f.primary_key]
        rows = []
        for external_id in sorted(missing):  # sorted: concurrent batches lock in one order
            bare = Profile(workspace=workspace, external_id=external_id)
            rows.append([f.pre_save(bare, True) for f in columns])
        created = insert_ignore_returning(Profile, [f.name for f in columns], rows, returning="id")
        report.profiles_created += len(created)
        ids.update(
            Profile.objects.filter(workspace=workspace, external_id__any=missing).values_list("external_id", "id")
        )
    return ids


def _context(workspace: Workspace) -> ReadContext:
    types = dict(AttributeDefinition.objects.filter(workspace=workspace).values_list("key", "type"))
    return ReadContext(workspace, types)


# --- profiles ------------------------------------------------------------------


def profiles_ingest(*, workspace: Workspace, items: list[Any]) -> IngestReport:
    report = IngestReport(received=len(items))
    ctx = _context(workspace)
    valid = _read_batch(items, "profile", PROFILE_READERS, ctx, report)
    with transaction.atomic():
        fresh = _fresh_keys(workspace, IngestReceipt.Kind.PROFILE, [key for key, _ in valid])
        report.duplicates += len(valid) - len(fresh)
        valid = [(key, clean) for key, clean in valid if key in fresh]
        if not valid:
            return report
        aliases = _resolve_aliases(workspace, {clean["external_id"] for _, clean in valid})

        # One row per person: later items of the batch override earlier ones.
        merged: dict[str, dict[str, Any]] = {}
        identities: dict[str, list[tuple[str, str]]] = {}
        for _, clean in valid:
            external_id = aliases.get(clean["external_id"], clean["external_id"])
            row = merged.setdefault(external_id, {})
            for name, value in clean.items():
                if name == "attributes":
                    row["attributes"] = {**row.get("attributes", {}), **value}
                elif name == "identities":
                    identities.setdefault(external_id, []).extend(value)
                elif name != "external_id":
                    row[name] = value

        # Lock the people we update, in id order, so concurrent batches cannot
        # interleave their attribute merges or deadlock each other.
        existing = {
            external_id: (pk, attributes)
            for pk, external_id, attributes in Profile.objects.select_for_update()
            .filter(workspace=workspace, external_id__any=merged.keys())
            .order_by("pk")
            .values_list("pk", "external_id", "attributes")
        }
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for external_id, row in merged.items():
            if "attributes" in row:
                current = existing[external_id][1] if external_id in existing else {}
                combined = {**(current or {}), **row["attributes"]}
                row["attributes"] = {k: v for k, v in combined.items() if v is not None}
            names = tuple(sorted(row))
            groups.setdefault(names, []).append({**row, "workspace": workspace.pk, "external_id": external_id})
        inserted = 0
        for names, profiles in groups.items():
            profiles.sort(key=lambda p: p["external_id"])
            inserted += upsert(
                Profile,
                profiles,
                unique_fields=["workspace", "external_id"],
                update_fields=[*names, "updated_at"],
                count_inserted=True,
            )
        # A person that a concurrent batch created between the lock above and this insert is
        # updated here, not created: the database says which rows were new.
        locked_new = sum(1 for external_id in merged if external_id not in existing)
        report.created = inserted if connection.vendor == "postgresql" else locked_new
        report.updated = len(merged) - report.created
        report.profiles_created = report.created
        transaction.on_commit(lambda: rows_written(model=Profile, rows=len(merged)))

        # Contact fields and explicit identities become identities of the profile.
        for external_id, row in merged.items():
            for kind in ("email", "phone"):
                if row.get(kind):
                    identities.setdefault(external_id, []).append((kind, row[kind]))
        if identities:
            ids = dict(
                Profile.objects.filter(workspace=workspace, external_id__any=identities.keys()).values_list(
                    "external_id", "id"
                )
            )
            now = timezone.now()
            # An identifier already known for someone else stays theirs (the conflict is skipped);
            # sorted, so concurrent batches lock the identifiers in one order.
            rows = sorted(
                {
                    (workspace.pk, ids[external_id], kind, value, now)
                    for external_id, pairs in identities.items()
                    for kind, value in pairs
                },
                key=lambda row: (row[2], row[3], row[1]),
            )
            insert_ignore_returning(
                Identity, ["workspace", "profile", "type", "value", "created_at"], rows, returning="id"
            )
    return report


# --- events --------------------------------------------------------------------


def events_ingest(*, workspace: Workspace, items: list[Any], create_missing: bool = True) -> IngestReport:
    """Append events; an unknown external id creates a bare profile, or with `create_missing`
    false rejects the item."""
    report = IngestReport(received=len(items))
    ctx = _context(workspace)
    positions: dict[str, int] = {}
    valid = _read_batch(items, "event", EVENT_READERS, ctx, report, positions)
    if not valid:
        return report
    with transaction.atomic():
        aliases = _resolve_aliases(workspace, {clean["external_id"] for _, clean in valid})
        if not create_missing:
            valid = _known_only(workspace, valid, aliases, positions, report)
            if not valid:
                return report
        ids = _profile_ids(workspace, {aliases.get(c["external_id"], c["external_id"]) for _, c in valid}, report)
        now = timezone.now()
        rows = sorted(
            (
                (
                    workspace.pk,
                    ids[aliases.get(clean["external_id"], clean["external_id"])],
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
    """Upsert orders by order id; an unknown external id creates a bare profile, or with
    `create_missing` false rejects the item (and keeps no receipt, so it can be sent again)."""
    report = IngestReport(received=len(items))
    ctx = _context(workspace)
    positions: dict[str, int] = {}
    valid = _read_batch(items, "order", ORDER_READERS, ctx, report, positions)
    with transaction.atomic():
        aliases = _resolve_aliases(workspace, {clean["external_id"] for _, clean in valid})
        if not create_missing:
            valid = _known_only(workspace, valid, aliases, positions, report)
        fresh = _fresh_keys(workspace, IngestReceipt.Kind.ORDER, [key for key, _ in valid])
        report.duplicates += len(valid) - len(fresh)
        valid = [(key, clean) for key, clean in valid if key in fresh]
        if not valid:
            return report
        by_order: dict[str, dict[str, Any]] = {}
        for _, clean in valid:
            by_order[clean["order_id"]] = {
                **clean,
                "external_id": aliases.get(clean["external_id"], clean["external_id"]),
            }
        ids = _profile_ids(workspace, {row["external_id"] for row in by_order.values()}, report)
        existing = set(
            Order.objects.filter(workspace=workspace, order_id__any=by_order.keys()).values_list("order_id", flat=True)
        )
        orders = [
            {
                "workspace": workspace.pk,
                "profile": ids[row["external_id"]],
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
