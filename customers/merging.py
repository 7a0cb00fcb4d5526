"""Merging profiles, many at once and set-based, and splitting a merge back.

A merge moves every row that points at the merged profile to the survivor: this app's rows
(events, orders, identities, answers, earlier aliases) and, through the `profile_merging`
signal, every higher app's (consents, memberships, deliveries, clicks, scores). Each moved row
is journalled (MergeRow), and a row dropped because the survivor already had its twin keeps
its values there, so that an unmerge sends back exactly what came from each side.

Merges and unmerges run under the workspace's stitching lock (exclusive), so no ingestion
batch writes rows for a profile while it is merged away.
"""

import json
import zlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext

from core.errors import CommonErrorCode
from core.sql import column_of, insert_ignore_returning, rows_delete, table_field, upsert
from customers.errors import CustomerErrorCode
from customers.match_rules import known_types
from customers.models import (
    PROFILE_CONTACT_FIELDS,
    PROFILE_FACET_FIELDS,
    Event,
    Identity,
    LifecycleStage,
    MergeRow,
    Order,
    Profile,
    ProfileMerge,
    SurveyResponse,
)
from customers.signals import profile_merging, profiles_regrouped

# Fields a merge fills on the survivor when the survivor has none.
MERGE_FILL = tuple(name for name in (*PROFILE_CONTACT_FIELDS, *PROFILE_FACET_FIELDS) if name != "gender")
SNAPSHOT_FIELDS = (
    "external_id",
    "lifecycle_stage",
    *PROFILE_CONTACT_FIELDS,
    *PROFILE_FACET_FIELDS,
    "attributes",
    "anonymous",
    "created_at",
)
_LOCK_NAMESPACE = zlib.crc32(b"cible.customers.stitching") & 0x7FFFFFFF


def stitching_lock(*, workspace_id: int, exclusive: bool) -> None:
    """The workspace's stitching lock, until the transaction ends (PostgreSQL; SQLite has one
    writer at a time anyway). Ingestion batches share it; a merge or unmerge holds it alone, so
    a batch never writes rows for a profile that a merge is taking away."""
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s, %s)", [_LOCK_NAMESPACE, workspace_id])


@dataclass(frozen=True)
class MergePlan:
    survivor_id: int
    merged_id: int
    rule_type: str = ""
    source: str = ""
    item_key: str = ""


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


class MergeJournal:
    """The merges under way, in a temporary table `moves(merged, survivor, merge_id)` that each
    app's `move` joins; counts what moved per merge, by kind."""

    def __init__(self, *, workspace_id: int, table: str, merge_ids: dict[int, int]):
        self.workspace_id = workspace_id
        self.table = table
        self.merge_ids = merge_ids  # merged profile id -> its ProfileMerge id
        self.counts: dict[int, dict[str, int]] = defaultdict(dict)

    @property
    def merged_ids(self) -> list[int]:
        return list(self.merge_ids)

    def move(
        self, *, model: type[models.Model], name: str, field: str = "profile", unique_with=(), keep_dropped=True
    ) -> int:
        """Point `model`'s rows at the survivors instead of the merged profiles, set-based.

        `unique_with` names the other fields of a unique key that includes `field`: where the
        survivor already has a row for the same key, the merged one's row is a duplicate and is
        dropped rather than moved (journalled with its values, to come back on an unmerge, unless
        `keep_dropped` is false: what is learnt again anyway, as scores are).
        Tables without a single-column key (memberships of a version) are not journalled: what
        follows an unmerge recomputes them. Returns the rows moved."""
        qn = connection.ops.quote_name
        table = qn(model._meta.db_table)
        column = qn(column_of(table_field(model, field)))
        moves = self.table
        journalled = not isinstance(model._meta.pk, models.CompositePrimaryKey)
        label = f"{model._meta.label}.{field}"
        with connection.cursor() as cursor:
            if unique_with:
                same = " AND ".join(
                    f"s.{qn(column_of(table_field(model, n)))} = {table}.{qn(column_of(table_field(model, n)))}"
                    for n in unique_with
                )
                twins = (
                    f"EXISTS (SELECT 1 FROM {moves} m JOIN {table} s ON s.{column} = m.survivor AND {same} "
                    f"WHERE m.merged = {table}.{column})"
                )
                if journalled and keep_dropped:
                    pk = qn(column_of(model._meta.pk))
                    cursor.execute(
                        f"SELECT {table}.{pk}, {table}.{column} FROM {table} WHERE {twins} "
                        f"AND {table}.{column} IN (SELECT merged FROM {moves})"
                    )
                    dropped = dict(cursor.fetchall())
                    if dropped:
                        rows = model._base_manager.filter(pk__in=list(dropped)).values()
                        MergeRow.objects.bulk_create(
                            MergeRow(
                                workspace_id=self.workspace_id,
                                merge_id=self.merge_ids[dropped[row[model._meta.pk.attname]]],
                                model=label,
                                row_id=row[model._meta.pk.attname],
                                data=_jsonable(row),
                            )
                            for row in rows
                        )
                        model._base_manager.filter(pk__in=list(dropped)).delete()
                else:
                    cursor.execute(
                        f"DELETE FROM {table} WHERE {table}.{column} IN (SELECT merged FROM {moves}) AND {twins}"
                    )
            if journalled:
                pk = qn(column_of(model._meta.pk))
                cursor.execute(
                    f"INSERT INTO {qn(MergeRow._meta.db_table)} (workspace_id, merge_id, model, row_id) "
                    f"SELECT %s, m.merge_id, %s, t.{pk} FROM {table} t JOIN {moves} m ON t.{column} = m.merged",
                    [self.workspace_id, label],
                )
            cursor.execute(
                f"SELECT m.merge_id, COUNT(*) FROM {table} t JOIN {moves} m ON t.{column} = m.merged "
                "GROUP BY m.merge_id"
            )
            moved = 0
            for merge_id in self.merge_ids.values():
                self.counts[merge_id][name] = 0
            for merge_id, count in cursor.fetchall():
                self.counts[merge_id][name] = count
                moved += count
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"UPDATE {table} SET {column} = m.survivor FROM {moves} m WHERE {table}.{column} = m.merged"
                )
            else:
                cursor.execute(
                    f"UPDATE {table} SET {column} = (SELECT m.survivor FROM {moves} m WHERE m.merged = {table}.{column}) "
                    f"WHERE {column} IN (SELECT merged FROM {moves})"
                )
        return moved


def _rows_insert(cursor, table: str, columns: list[str], types: list[str], rows: Sequence[Sequence[Any]]) -> None:
    """Rows into a temporary table: on PostgreSQL one array a column (psycopg parses a statement of
    thousands of `%s` longer than the database runs it), VALUES lists on SQLite."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{kind}[]" for kind in types)
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays})",
            [list(column) for column in zip(*rows, strict=True)],
        )
        return
    for start in range(0, len(rows), 5000):
        chunk = rows[start : start + 5000]
        marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([marks] * len(chunk))}",
            [value for row in chunk for value in row],
        )


@contextmanager
def _moves_table(rows: Sequence[tuple[int, int, int]]) -> Iterator[str]:
    name = "cible_merge_moves"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {name} (merged bigint PRIMARY KEY, survivor bigint NOT NULL, merge_id bigint)"
        )
        _rows_insert(cursor, name, ["merged", "survivor", "merge_id"], ["bigint", "bigint", "bigint"], rows)
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {name}")
    try:
        yield name
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")


def column_update(*, model: type[models.Model], field: str, values: Sequence[tuple[int, Any]]) -> None:
    """Set `field` of each row (by primary key) to its value, in one statement through a temporary
    table: bulk_update's CASE over a thousand rows costs more to build than to run."""
    if not values:
        return
    qn = connection.ops.quote_name
    target = table_field(model, field)
    table, column, pk = qn(model._meta.db_table), qn(column_of(target)), qn(column_of(model._meta.pk))
    is_json = isinstance(target, models.JSONField)
    kind = "text" if is_json else (target.db_type(connection) or "text")
    name = "cible_column_update"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")
        cursor.execute(f"CREATE TEMPORARY TABLE {name} (id bigint PRIMARY KEY, value {kind})")
        rows = [(pk_value, _json_text(value) if is_json else value) for pk_value, value in values]
        _rows_insert(cursor, name, ["id", "value"], ["bigint", kind], rows)
        value = "CAST(v.value AS jsonb)" if is_json and connection.vendor == "postgresql" else "v.value"
        if connection.vendor == "postgresql":
            cursor.execute(f"UPDATE {table} SET {column} = {value} FROM {name} v WHERE {table}.{pk} = v.id")
        else:
            cursor.execute(
                f"UPDATE {table} SET {column} = (SELECT {value} FROM {name} v WHERE v.id = {table}.{pk}) "
                f"WHERE {pk} IN (SELECT id FROM {name})"
            )
        cursor.execute(f"DROP TABLE IF EXISTS {name}")


def _json_text(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder)


def _empty(value: Any) -> bool:
    return value in ("", None)


def profiles_merge(
    *, workspace_id: int, plans: Sequence[MergePlan], by=None, reason: str = ProfileMerge.Reason.MANUAL
) -> list[ProfileMerge]:
    """Merge each plan's profile into its survivor, all in one set of statements: rows move
    (journalled), the survivor's empty fields are filled from the merged profile, its external id
    keeps resolving to the survivor, and the merged profile goes. A survivor is never merged in
    the same call. Runs inside the caller's transaction; takes the stitching lock."""
    if not plans:
        return []
    survivors = {plan.survivor_id for plan in plans}
    merged_ids = [plan.merged_id for plan in plans]
    if survivors & set(merged_ids) or len(set(merged_ids)) != len(merged_ids):
        raise ValueError("A profile is merged twice, or is both merged and a survivor.")
    with transaction.atomic():
        stitching_lock(workspace_id=workspace_id, exclusive=True)
        # Lock every row in id order so two opposite merges cannot deadlock.
        ids = sorted(survivors | set(merged_ids))
        snapshots = {
            row["id"]: row
            for row in Profile.objects.select_for_update()
            .filter(workspace_id=workspace_id, pk__any=ids)
            .order_by("pk")
            .values("id", *SNAPSHOT_FIELDS)
        }
        if len(snapshots) != len(ids):
            raise ValidationError(
                {"other": ValidationError(gettext("Profile no longer exists."), code=CommonErrorCode.NOT_FOUND)}
            )
        now = timezone.now()
        merges = [
            ProfileMerge(
                workspace_id=workspace_id,
                survivor_id=plan.survivor_id,
                merged_external_id=snapshots[plan.merged_id]["external_id"],
                merged_profile_id=plan.merged_id,
                merged_at=now,
                merged_by=by,
                reason=reason,
                rule_type=plan.rule_type,
                source=plan.source,
                item_key=plan.item_key,
                moved={},
                merged_snapshot=_jsonable(snapshots[plan.merged_id]),
                survivor_snapshot=_jsonable(snapshots[plan.survivor_id]),
            )
            for plan in plans
        ]
        names = [
            "workspace",
            "survivor",
            "merged_external_id",
            "merged_profile_id",
            "merged_at",
            "merged_by",
            "reason",
            "rule_type",
            "source",
            "item_key",
            "moved",
            "merged_snapshot",
            "survivor_snapshot",
        ]
        attnames = [table_field(ProfileMerge, name).attname for name in names]
        ids = insert_ignore_returning(
            ProfileMerge, names, [[getattr(m, attname) for attname in attnames] for m in merges], returning="id"
        )
        if len(ids) != len(merges):  # an external id merged twice at once: the lock makes it impossible
            raise RuntimeError("A merge's alias exists already.")
        for merge, pk in zip(merges, ids, strict=True):
            merge.pk = pk
        merge_ids = {m.merged_profile_id: m.pk for m in merges}
        with _moves_table([(plan.merged_id, plan.survivor_id, merge_ids[plan.merged_id]) for plan in plans]) as table:
            journal = MergeJournal(workspace_id=workspace_id, table=table, merge_ids=merge_ids)
            journal.move(model=Event, name="events")
            journal.move(model=Order, name="orders")
            journal.move(model=Identity, name="identities")
            journal.move(model=SurveyResponse, name="survey_responses")
            journal.move(model=ProfileMerge, name="aliases", field="survivor")  # earlier aliases follow
            # Every other app moves its own rows (consents, memberships, deliveries, clicks...).
            profile_merging.send(sender=Profile, workspace_id=workspace_id, journal=journal)
        _fill_survivors(workspace_id, plans, snapshots)
        column_update(model=ProfileMerge, field="moved", values=[(m.pk, journal.counts.get(m.pk, {})) for m in merges])
        # Every row that pointed at them was moved above (a table left out would fail the foreign key
        # at commit, never lose rows silently): one DELETE, without the ORM's collection of cascades.
        rows_delete(Profile.objects.filter(pk__any=merged_ids))
        kept, gone = sorted(survivors), sorted(merged_ids)
        transaction.on_commit(
            lambda: profiles_regrouped.send(sender=Profile, workspace_id=workspace_id, profile_ids=kept, gone_ids=gone)
        )
    return merges


def _fill_survivors(workspace_id: int, plans: Sequence[MergePlan], snapshots: dict[int, dict]) -> None:
    """Each survivor takes what it lacks from the profiles merged into it (in the plans' order)."""
    filled: dict[int, dict[str, Any]] = {}
    for plan in plans:
        row = filled.setdefault(plan.survivor_id, dict(snapshots[plan.survivor_id]))
        other = snapshots[plan.merged_id]
        for name in MERGE_FILL:
            if _empty(row[name]) and not _empty(other[name]):
                row[name] = other[name]
        if row["gender"] == "unknown":
            row["gender"] = other["gender"]
        if other["lifecycle_stage"] == LifecycleStage.CUSTOMER:
            row["lifecycle_stage"] = LifecycleStage.CUSTOMER
        row["attributes"] = {**(other["attributes"] or {}), **(row["attributes"] or {})}
        row["anonymous"] = row["anonymous"] and other["anonymous"]
    names = [*MERGE_FILL, "gender", "lifecycle_stage", "attributes", "anonymous"]
    rows = [
        {"workspace": workspace_id, "external_id": row["external_id"], **{n: row[n] for n in names}}
        for row in sorted(filled.values(), key=lambda r: r["external_id"])
    ]
    upsert(Profile, rows, unique_fields=["workspace", "external_id"], update_fields=[*names, "updated_at"])


# --- unmerge -----------------------------------------------------------------------


def _restored(field: models.Field, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(field, models.JSONField):
        return value
    if isinstance(field, models.DateTimeField) and isinstance(value, str):
        return datetime.fromisoformat(value)
    if isinstance(field, models.DateField) and isinstance(value, str):
        return date.fromisoformat(value)
    if isinstance(field, models.DecimalField):
        return Decimal(str(value))
    return field.to_python(value)


def profile_unmerge(*, merge: ProfileMerge, by=None) -> Profile:
    """Split a merge back: the merged profile comes back as it was, with its id and external id,
    and every row that came from it (events, orders, identifiers, consents, deliveries...) goes
    back to it; what the survivor had, or received since, stays. Fields the merge filled on the
    survivor are emptied again where the survivor still holds the merged profile's value.
    Returns the profile restored."""
    with transaction.atomic():
        stitching_lock(workspace_id=merge.workspace_id, exclusive=True)
        merge = ProfileMerge.objects.select_for_update().get(pk=merge.pk)
        if merge.unmerged_at is not None:
            raise ValidationError(
                {
                    "merge": ValidationError(
                        gettext("This merge was already split back."), code=CustomerErrorCode.ALREADY_UNMERGED
                    )
                }
            )
        snapshot = merge.merged_snapshot
        if not snapshot:
            raise ValidationError(
                {
                    "merge": ValidationError(
                        gettext("This merge predates the merge journal: it cannot be split back."),
                        code=CustomerErrorCode.NOT_UNMERGEABLE,
                    )
                }
            )
        survivor = Profile.objects.select_for_update().get(pk=merge.survivor_id)
        if Profile.objects.filter(workspace_id=merge.workspace_id, external_id=merge.merged_external_id).exists():
            raise ValidationError(
                {
                    "merge": ValidationError(
                        gettext("A profile with the external id %(value)s exists again: merge or rename it first.")
                        % {"value": merge.merged_external_id},
                        code=CommonErrorCode.UNIQUE,
                    )
                }
            )
        restored = Profile(pk=merge.merged_profile_id, workspace_id=merge.workspace_id)
        for name in SNAPSHOT_FIELDS:
            field = table_field(Profile, name)
            setattr(restored, field.attname, _restored(field, snapshot.get(name)))
        created_at = restored.created_at
        restored.save(force_insert=True)
        Profile.objects.filter(pk=restored.pk).update(created_at=created_at)
        by_model: dict[str, list[MergeRow]] = defaultdict(list)
        for row in MergeRow.objects.filter(merge=merge).order_by("pk"):
            by_model[row.model].append(row)
        for label, rows in by_model.items():
            app_model, field_name = label.rsplit(".", 1)
            model = apps.get_model(app_model)
            field = table_field(model, field_name)
            moved = [row.row_id for row in rows if row.data is None]
            if moved:
                model._base_manager.filter(pk__any=moved, **{field.attname: survivor.pk}).update(
                    **{field.attname: restored.pk}
                )
            again = []
            for row in rows:
                if row.data is None:
                    continue
                values = {
                    f.attname: _restored(f, row.data.get(f.attname))
                    for f in model._meta.concrete_fields
                    if f.attname in row.data and not f.primary_key
                }
                values[field.attname] = restored.pk
                again.append(model(**values))
            model._base_manager.bulk_create(again)
        _survivor_unfill(survivor, merge)
        merge.unmerged_at = timezone.now()
        merge.unmerged_by = by
        merge.save(update_fields=["unmerged_at", "unmerged_by"])
        ids = sorted({survivor.pk, restored.pk})
        transaction.on_commit(
            lambda: profiles_regrouped.send(
                sender=Profile, workspace_id=merge.workspace_id, profile_ids=ids, gone_ids=[]
            )
        )
    return restored


def _survivor_unfill(survivor: Profile, merge: ProfileMerge) -> None:
    before, merged = merge.survivor_snapshot, merge.merged_snapshot
    changed = False
    for name in MERGE_FILL:
        field = table_field(Profile, name)
        current = getattr(survivor, field.attname)
        if _empty(before.get(name)) and not _empty(current) and _jsonable(current) == merged.get(name):
            setattr(survivor, field.attname, "" if isinstance(field, models.CharField) else None)
            changed = True
    if before.get("gender") == "unknown" and survivor.gender == merged.get("gender"):
        survivor.gender = "unknown"
        changed = True
    attributes = dict(survivor.attributes or {})
    own = before.get("attributes") or {}
    for key, value in (merged.get("attributes") or {}).items():
        if key not in own and attributes.get(key) == value:
            attributes.pop(key)
            changed = True
    survivor.attributes = attributes
    if (
        before.get("lifecycle_stage") == LifecycleStage.PROSPECT
        and survivor.lifecycle_stage == LifecycleStage.CUSTOMER
        and not survivor.orders.filter(status=Order.Status.COMPLETED).exists()
    ):
        survivor.lifecycle_stage = LifecycleStage.PROSPECT
        changed = True
    if before.get("anonymous") and not survivor.anonymous:
        survivor.anonymous = not survivor.identities.filter(type__in=known_types(survivor.workspace_id)).exists()
        changed = True
    if changed:
        survivor.save()
