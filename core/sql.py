"""Set-based inserts the ORM does not offer: INSERT ... ON CONFLICT DO NOTHING
RETURNING, which tells exactly which rows a replayed batch really added.
Both PostgreSQL and SQLite (>= 3.35) support it.
"""

import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import orjson
from django.core.exceptions import FieldError
from django.db import DatabaseError, connection, connections, router, transaction
from django.db.models import BooleanField, Expression, F, Field, JSONField, Model, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

# SQLite (>= 3.32) takes at most 32,766 parameters a statement.
_SQLITE_MAX_PARAMS = 32_000


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
    """Insert rows, skip those that hit a unique constraint, return `returning` of the inserted ones,
    in the rows' order."""
    model_fields = [table_field(model, name) for name in fields]
    connection = connections[router.db_for_write(model)]
    column = connection.ops.quote_name(column_of(table_field(model, returning)))
    return _insert(model, model_fields, list(rows), f"ON CONFLICT DO NOTHING RETURNING {column}")


def upsert(
    model: type[Model],
    rows: Sequence[Mapping[str, Any]],
    *,
    unique_fields: Sequence[str],
    update_fields: Sequence[str],
    count_inserted: bool = False,
) -> int:
    """INSERT ... ON CONFLICT (unique_fields) DO UPDATE SET update_fields, for rows given as
    {field name: value} (a foreign key by its id). Every other concrete column gets its default,
    and auto_now / auto_now_add columns the time of the call, as bulk_create would give them.
    Returns the rows written, or with `count_inserted` how many of them were new rows, as the
    database decided: on PostgreSQL a row this statement inserted has no `xmax` yet, one it
    updated has, so two concurrent batches never both count the same new row (SQLite, with one
    writer at a time, counts every row written: its callers compare with the rows they locked).

    It replaces bulk_create(update_conflicts=True), which built 10,000 model instances (~0.3 s)
    and bound every value client-side into one VALUES text: ~1.1 s in all for 10,000 orders on
    PostgreSQL, against ~0.35 s through the COPY stage."""
    if not rows:
        return 0
    connection = connections[router.db_for_write(model)]
    qn = connection.ops.quote_name
    fields = [f for f in model._meta.concrete_fields if not f.primary_key and not getattr(f, "generated", False)]
    now = timezone.now()
    defaults = {
        f.name: now if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False) else f.get_default()
        for f in fields
    }
    values = [[row.get(f.name, defaults[f.name]) for f in fields] for row in rows]
    conflict = ", ".join(qn(column_of(table_field(model, name))) for name in unique_fields)
    updates = ", ".join(
        f"{qn(column)} = EXCLUDED.{qn(column)}" for column in (column_of(table_field(model, n)) for n in update_fields)
    )
    postgresql = connection.vendor == "postgresql"
    returned = "(xmax = 0)" if count_inserted and postgresql else "1"
    tail = f"ON CONFLICT ({conflict}) DO UPDATE SET {updates} RETURNING {returned}"
    results = _insert(model, fields, values, tail)
    return sum(1 for new in results if new is True) if count_inserted and postgresql else len(results)


def _insert(model: type[Model], fields: Sequence[Field], rows: Sequence[Sequence[Any]], tail: str) -> list[Any]:
    """INSERT the rows, in their order (so concurrent batches lock keys in the same order), with
    `tail` (ON CONFLICT ... RETURNING one column); returns what it returned. PostgreSQL reads
    the rows from a COPY stage, SQLite from VALUES lists within its parameter limit."""
    if not rows:
        return []
    connection = connections[router.db_for_write(model)]
    qn = connection.ops.quote_name
    columns = ", ".join(qn(column_of(f)) for f in fields)
    head = f"INSERT INTO {qn(model._meta.db_table)} ({columns}) "
    returned: list[Any] = []
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with staged(cursor, fields, rows) as stage:
                cursor.execute(f"{head}SELECT {columns} FROM {stage} ORDER BY {STAGE_ORDER} {tail}")
                return [value for (value,) in cursor.fetchall()]
        per_statement = max(1, _SQLITE_MAX_PARAMS // len(fields))
        row_marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            params = [
                field.get_db_prep_save(value, connection)
                for row in chunk
                for field, value in zip(fields, row, strict=True)
            ]
            cursor.execute(f"{head}VALUES {', '.join([row_marks] * len(chunk))} {tail}", params)
            returned.extend(value for (value,) in cursor.fetchall())
    return returned


STAGE_ORDER = "_stage_order"
_stage_names = itertools.count()


@contextmanager
def staged(cursor, model_fields: Sequence[Field], rows: Sequence[Sequence[Any]]) -> Iterator[str]:
    """PostgreSQL: the rows COPYed into a temporary table whose columns are named and typed like
    the model's (plus STAGE_ORDER, the rows' order); yields its name and drops it afterwards.

    COPY is the cheapest way into PostgreSQL, but it cannot skip or update on a conflict; a
    stage followed by one INSERT ... SELECT ... ON CONFLICT can. On 10,000 events this costs
    0.05 s of COPY and 0.19 s of INSERT, against 0.55 s for the same rows sent as unnest
    arrays (psycopg dumps a Python list element by element, 0.3 s of it on the client).
    Must run inside a transaction (the table goes at commit if the caller fails before the drop).
    """
    connection = cursor.db
    qn = connection.ops.quote_name
    name = f"cible_stage_{next(_stage_names)}"
    definitions = ", ".join(f"{qn(column_of(f))} {_column_type(f, connection)}" for f in model_fields)
    columns = ", ".join(qn(column_of(f)) for f in model_fields)
    cursor.execute(f"CREATE TEMPORARY TABLE {name} ({definitions}, {STAGE_ORDER} integer) ON COMMIT DROP")
    dumpers = [_copy_value(field, connection) for field in model_fields]
    with cursor.cursor.copy(f"COPY {name} ({columns}, {STAGE_ORDER}) FROM STDIN") as copy:
        for position, row in enumerate(rows):
            copy.write_row([*(dump(value) for dump, value in zip(dumpers, row, strict=True)), position])
    try:
        yield name
    finally:
        cursor.execute(f"DROP TABLE IF EXISTS {name}")


def _column_type(field: Field, connection) -> str:
    db_type = field.rel_db_type(connection) if field.is_relation else field.db_type(connection)
    if db_type is None:
        raise FieldError(f"{field} has no column type.")
    return db_type


def _copy_value(field: Field, connection) -> Callable[[Any], Any]:
    """How a value of `field` is written into a COPY: JSON as text (cast by the jsonb column); None,
    integers, texts, booleans, floats, dates and aware date-times as they are, which is what Django
    would send for them; anything else as Django prepares it (get_db_prep_save costs ~5 us a value:
    0.4 s of a 10,000-event batch)."""
    if isinstance(field, JSONField):
        return json_text
    prepare = field.get_db_prep_save
    kind = field.get_internal_type()
    if kind == "DateTimeField":
        return lambda value: (
            value
            if value is None or (value.__class__ is datetime and value.tzinfo is not None)
            else prepare(value, connection)
        )
    plain = _PLAIN_TYPES.get("IntegerField" if field.is_relation else kind)
    if plain is None:
        return lambda value: None if value is None else prepare(value, connection)
    return lambda value: value if value is None or value.__class__ is plain else prepare(value, connection)


_INTEGER_FIELDS = {"AutoField", "BigAutoField", "IntegerField", "BigIntegerField", "PositiveIntegerField"}
_TEXT_FIELDS = {"CharField", "TextField", "SlugField", "EmailField"}
# The Python type each kind of field sends to the database unchanged.
_PLAIN_TYPES: dict[str, type] = {
    **dict.fromkeys(_INTEGER_FIELDS, int),
    **dict.fromkeys(_TEXT_FIELDS, str),
    "BooleanField": bool,
    "FloatField": float,
    "DateField": date,
}


def json_text(value: Any) -> str:
    """A JSON value as compact text: orjson, or the standard library for what orjson refuses
    (keys that are not strings, integers past 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"))


def insert_select(
    model,
    columns: list[str],
    rows: QuerySet,
    *,
    ignore_conflicts: bool = False,
    fixed: Mapping[str, Any] | None = None,
) -> int:
    """INSERT INTO model (columns) SELECT ...: `rows` yields the values in the columns' order.

    `fixed` gives columns the same value on every row ({"audience": 7, "version": 3}), placed
    before `columns`; `rows` is then read as a subquery, so it may be a UNION, which Django
    cannot annotate with constants."""
    sql, params = rows.query.sql_with_params()
    fixed = dict(fixed or {})
    fields = [model._meta.get_field(name) for name in [*fixed, *columns]]
    if fixed:
        sql = f"SELECT {', '.join(['%s'] * len(fixed))}, m.* FROM ({sql}) m"
        params = (*fixed.values(), *params)
    qn = connection.ops.quote_name
    tail = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) {sql}{tail}", params
        )
        return cursor.rowcount


def rows_delete(queryset: QuerySet) -> int:
    """Delete the rows with one `DELETE ... WHERE`, and return how many went.

    `QuerySet.delete()` runs Django's collector: it reads every row into memory to send
    pre/post_delete signals and follow cascades, one query per related model. The tables
    deleted this way (roll-ups, attributions, a person's identities, answers and consents,
    receipts) have no signals, no files and nothing that points at them, so the collector would
    only read, row by row, what one statement removes. Only for such tables."""
    return queryset._raw_delete(queryset.db)


class InRows(Expression):
    """`<outer column> IN (<rows>)`, written so that PostgreSQL plans it as a join wherever it sits.

    PostgreSQL turns `x IN (subquery)` into a semi-join only at the top level of a WHERE; under
    OR or NOT it keeps a SubPlan, hashed only while the subquery's result fits in work_mem and
    otherwise re-read for every outer row (a broad segment at 100k profiles under the default
    4 MB never finished). This writes `EXISTS (SELECT 1 FROM (<rows>) AS _r(id) WHERE _r.id = x)`:
    at the top level (negated or not) it is pulled up into a semi- or anti-join against the rows
    as a derived table (a hash join that spills in batches, or a merge join); under OR the
    comparison with the outer row is pushed into the derived table, so it becomes a probe of the
    rows' own index per outer row (or a hashed SubPlan when that fits), never a full re-read.
    `rows` is a queryset of one column (or RawSQL). SQLite keeps the plain `x IN (...)`, which it
    runs as an index lookup.
    """

    conditional = True
    output_field = BooleanField()

    def __init__(self, rows: "QuerySet | RawSQL", outer: Any = "pk") -> None:
        super().__init__()
        self.rows = rows
        self.outer = F(outer) if isinstance(outer, str) else outer

    def get_source_expressions(self) -> list:
        return [self.outer]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        (self.outer,) = exprs

    def _rows_sql(self, connection) -> tuple[str, list]:
        if isinstance(self.rows, RawSQL):
            return self.rows.sql, list(self.rows.params)
        query = self.rows.query.clone()
        query.clear_ordering(force=True)
        # Rows that can hold no one (`.none()`) raise EmptyResultSet, which the WHERE clause takes
        # as false (true under NOT).
        sql, params = query.get_compiler(connection=connection).as_sql()
        return sql, list(params)

    def as_sql(self, compiler, connection) -> tuple[str, Any]:
        outer_sql, outer_params = compiler.compile(self.outer)
        rows_sql, rows_params = self._rows_sql(connection)
        if connection.vendor == "postgresql":
            sql = f"EXISTS (SELECT 1 FROM ({rows_sql}) AS _r(id) WHERE _r.id = {outer_sql})"
            return sql, [*rows_params, *outer_params]
        return f"{outer_sql} IN ({rows_sql})", [*outer_params, *rows_params]


# PostgreSQL's "query_canceled": the statement ran past statement_timeout.
_QUERY_CANCELED = "57014"


@contextmanager
def statement_timeout(*, seconds: float) -> Iterator[None]:
    """Every statement run inside is stopped by the database once it runs longer than `seconds`.

    A preview, an index table or an audience whose query cannot finish must end with a clear
    error, not hold a web or worker process (and a database backend) without bound. On PostgreSQL
    this is `statement_timeout`: local to the transaction (a savepoint) inside an atomic block,
    for the session otherwise (a worker's computation spans several transactions), restored
    afterwards either way. SQLite has no such setting: a progress handler interrupts the
    statement past the deadline. `is_statement_timeout` recognises the error either raises.
    """
    if connection.vendor != "postgresql":
        connection.ensure_connection()
        raw = connection.connection
        deadline = time.monotonic() + seconds
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 100_000)
        try:
            yield
        finally:
            raw.set_progress_handler(None, 0)
        return
    value = f"{max(1, round(seconds * 1000))}ms"
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        previous = cursor.fetchone()[0]
    if connection.in_atomic_block:
        # Local to a savepoint: an error inside rolls it back, which restores the value too.
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [value])
            yield
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', %s, false)", [value])
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, false)", [previous])
        except DatabaseError:
            # The connection itself failed (the error being raised says why): drop it, so that no
            # other work runs on it under this bound.
            connection.close()


def is_statement_timeout(error: BaseException) -> bool:
    """Whether a database error is a statement stopped by `statement_timeout`."""
    cause = getattr(error, "__cause__", None)
    if getattr(cause, "sqlstate", None) == _QUERY_CANCELED:
        return True
    return connection.vendor == "sqlite" and "interrupted" in str(error)


# --- numeric columns written in one go ---------------------------------------------------------

# numpy dtype -> PostgreSQL binary COPY encoding (big-endian, the wire order)
_BINARY_TYPES = {
    "int64": (">i8", 8),
    "int32": (">i4", 4),
    "int16": (">i2", 2),
    "float64": (">f8", 8),
    "float32": (">f4", 4),
}


def arrays_copy(*, table: str, columns: Sequence[str], arrays: Sequence[Any]) -> int:
    """Write equal-length numpy arrays as rows of `table` (one array per column, no NULLs).

    PostgreSQL: one binary COPY whose body numpy lays out whole (a structured array in the
    wire format), so a million rows cost no Python object per row; the column types must
    match the arrays' dtypes (int64 for bigint, int32 for integer, float64 for double
    precision). SQLite: executemany in chunks (the embedded default is for small bases).
    """
    import numpy as np

    n = len(arrays[0]) if arrays else 0
    if n == 0:
        return 0
    qn = connection.ops.quote_name
    names = ", ".join(qn(c) for c in columns)
    if connection.vendor != "postgresql":
        rows = list(zip(*(a.tolist() for a in arrays), strict=True))
        marks = ", ".join(["%s"] * len(columns))
        with connection.cursor() as cursor:
            for start in range(0, n, 5000):
                cursor.executemany(f"INSERT INTO {qn(table)} ({names}) VALUES ({marks})", rows[start : start + 5000])
        return n
    fields: list[tuple[str, str]] = [("count", ">i2")]
    for i, array in enumerate(arrays):
        code, size = _BINARY_TYPES[str(array.dtype)]
        fields += [(f"l{i}", ">i4"), (f"v{i}", code)]
    body = np.empty(n, dtype=np.dtype(fields))
    body["count"] = len(arrays)
    for i, array in enumerate(arrays):
        body[f"l{i}"] = _BINARY_TYPES[str(array.dtype)][1]
        body[f"v{i}"] = array
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    trailer = (-1).to_bytes(2, "big", signed=True)
    connection.ensure_connection()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {qn(table)} ({names}) FROM STDIN WITH (FORMAT binary)") as copy:
            copy.write(header)
            raw = body.tobytes()
            step = 8 << 20
            for start in range(0, len(raw), step):
                copy.write(raw[start : start + step])
            copy.write(trailer)
    return n


# --- JSON arrays as rows ---------------------------------------------------------------------------


def json_elements(column: str, alias: str, key: str | None = None) -> str:
    """A FROM-clause join that turns the JSON array in `column` (of the preceding table), or in
    its member `key`, into one row per element, `alias.value`; anything but an array gives no
    row. Read an element with `json_element_text` and `json_member`. Names are Cible's, never a client's."""
    if connection.vendor == "postgresql":
        array = f"{column} -> '{key}'" if key else column
        return (
            f"CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof({array}) = 'array' "
            f"THEN {array} ELSE '[]'::jsonb END) AS {alias}(value)"
        )
    kind, array = (
        (f"json_type({column}, '$.{key}')", f"json_extract({column}, '$.{key}')")
        if key
        else (
            f"json_type({column})",
            column,
        )
    )
    return f"CROSS JOIN json_each(CASE WHEN {kind} = 'array' THEN {array} ELSE '[]' END) AS {alias}"


def json_element_text(element: str) -> str:
    """The text of an element of `json_elements` (a string element as it is)."""
    return f"({element} #>> '{{}}')" if connection.vendor == "postgresql" else element


def json_member(element: str, key: str) -> str:
    """The text of member `key` of an element of `json_elements` (`key` is Cible's, never a client's)."""
    if connection.vendor == "postgresql":
        return f"({element} ->> '{key}')"
    return f"json_extract({element}, '$.{key}')"


@contextmanager
def temporary_rows(sql: str, params: Sequence[Any]) -> Iterator[str]:
    """The rows of a query kept in a temporary table while the block runs, for a set that several
    statements read (computed once, not once a statement); yields the table's name. Analysed on
    PostgreSQL, whose autovacuum never looks at temporary tables."""
    name = f"cible_rows_{next(_stage_names)}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {name} AS {sql}", params)
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {name}")
    try:
        yield name
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
