"""Set-based inserts the ORM does not offer: INSERT ... ON CONFLICT DO NOTHING
RETURNING, which tells exactly which rows a replayed batch really added.
Both PostgreSQL and SQLite (>= 3.35) support it.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Model

# PostgreSQL takes at most 65,535 parameters a statement; SQLite (>= 3.32) 32,766.
_MAX_PARAMS = {"postgresql": 65_000, "sqlite": 32_000}


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
    model_fields = [opts.get_field(name) for name in fields]
    returning_column = opts.get_field(returning).column
    per_statement = max(1, _MAX_PARAMS.get(connection.vendor, 30_000) // len(fields))
    row_placeholder = "(" + ", ".join(["%s"] * len(fields)) + ")"
    head = f"INSERT INTO {qn(opts.db_table)} ({', '.join(qn(f.column) for f in model_fields)}) VALUES "
    tail = f" ON CONFLICT DO NOTHING RETURNING {qn(returning_column)}"
    inserted: list[Any] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            params: list[Any] = []
            for row in chunk:
                params.extend(
                    field.get_db_prep_save(value, connection) for field, value in zip(model_fields, row, strict=True)
                )
            cursor.execute(head + ", ".join([row_placeholder] * len(chunk)) + tail, params)
            inserted.extend(value for (value,) in cursor.fetchall())
    return inserted
