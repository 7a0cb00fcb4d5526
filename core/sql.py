"""Set-based inserts the ORM does not offer: INSERT ... ON CONFLICT DO NOTHING
RETURNING, which tells exactly which rows a replayed batch really added.
Both PostgreSQL and SQLite (>= 3.35) support it.
"""

import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.exceptions import FieldError
from django.db import connection, connections, router
from django.db.models import Exists, Field, JSONField, Model, OuterRef, QuerySet

# SQLite (>= 3.32) takes at most 32,766 parameters a statement.
_SQLITE_MAX_PARAMS = 32_000
# PostgreSQL: rows a statement. Each column travels as one array parameter
# (unnest), so the statement text stays tiny whatever the batch: measured twice
# as fast as a VALUES list of 65,000 client-side-bound parameters.
_PG_ROWS_PER_STATEMENT = 10_000


def table_field(model: type[Model], name: str) -> Field:
    """The field `name` of the model, which must be a column of its table (not a reverse relation)."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field):
        raise FieldError(f"{model._meta.label}.{name} is not a column of {model._meta.db_table}.")
    return field


def column_of(field: Field) -> str:
    """The table column of a field; a field without one (e.g. a many-to-many) cannot be written by SQL here."""
    if field.column is None:
        raise FieldError(f"{field} has no column.")
    return field.column


def insert_ignore_returning(
    model: type[Model], fields: Sequence[str], rows: Iterable[Sequence[Any]], *, returning: str
) -> list[Any]:
    """Insert rows, skip those that hit a unique constraint, return `returning` of the inserted ones."""
    rows = list(rows)
    if not rows:
        return []
    connection = connections[router.db_for_write(model)]
    qn = connection.ops.quote_name
    opts = model._meta
    model_fields = [table_field(model, name) for name in fields]
    head = f"INSERT INTO {qn(opts.db_table)} ({', '.join(qn(column_of(f)) for f in model_fields)}) "
    tail = f" ON CONFLICT DO NOTHING RETURNING {qn(column_of(table_field(model, returning)))}"
    inserted: list[Any] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            casts = ", ".join(f"%s::{_array_type(field, connection)}" for field in model_fields)
            for start in range(0, len(rows), _PG_ROWS_PER_STATEMENT):
                chunk = rows[start : start + _PG_ROWS_PER_STATEMENT]
                columns = [[_prep(field, row[i], connection) for row in chunk] for i, field in enumerate(model_fields)]
                # unnest keeps the rows' order, so concurrent batches lock keys in the same order.
                cursor.execute(head + f"SELECT * FROM unnest({casts})" + tail, columns)
                inserted.extend(value for (value,) in cursor.fetchall())
        else:
            per_statement = max(1, _SQLITE_MAX_PARAMS // len(fields))
            row_marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
            for start in range(0, len(rows), per_statement):
                chunk = rows[start : start + per_statement]
                params = [
                    field.get_db_prep_save(value, connection)
                    for row in chunk
                    for field, value in zip(model_fields, row, strict=True)
                ]
                cursor.execute(head + "VALUES " + ", ".join([row_marks] * len(chunk)) + tail, params)
                inserted.extend(value for (value,) in cursor.fetchall())
    return inserted


def _array_type(field, connection) -> str:
    db_type = field.rel_db_type(connection) if field.is_relation else field.db_type(connection)
    return f"{db_type}[]"


def _prep(field, value: Any, connection) -> Any:
    if isinstance(field, JSONField):
        return json.dumps(value)  # cast to jsonb by the statement
    return field.get_db_prep_save(value, connection)


def insert_select(model, columns: list[str], rows: QuerySet, *, ignore_conflicts: bool = False) -> int:
    """INSERT INTO model (columns) SELECT ...: `rows` yields the values in the columns' order."""
    sql, params = rows.query.sql_with_params()
    fields = [model._meta.get_field(name) for name in columns]
    qn = connection.ops.quote_name
    tail = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) {sql}{tail}", params
        )
        return cursor.rowcount


def rows_reassign(*, model: type[Model], survivor: Any, merged: Any, field: str = "profile", unique_with=()) -> int:
    """Point `model`'s rows at `survivor` instead of `merged` (a profile merge), set-based.

    `unique_with` names the other fields of a unique key that includes `field`: where the
    survivor already has a row for the same key, the merged one's row is a duplicate and
    is dropped rather than moved. Uses the base manager, so append-only histories move
    too (their content is untouched). Returns the rows moved.
    """
    rows = model._base_manager.filter(**{field: merged})
    if unique_with:
        twin = model._base_manager.filter(**{field: survivor}, **{name: OuterRef(name) for name in unique_with})
        rows.filter(Exists(twin)).delete()
    return rows.update(**{field: survivor})
