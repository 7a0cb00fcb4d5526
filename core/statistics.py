"""Fresh planner statistics after bulk writes.

Right after a large load PostgreSQL plans with the statistics of the table as it was (none at
all for a new table): a preview of two order conditions took 20 to 60 s then, 0.2 s after
`ANALYZE`. Autovacuum catches up within minutes; a marketer previews at once. So whatever
writes rows in bulk (ingestion batches, CSV imports, what insights learns) reports them here, and
once the rows written since the last analysis reach a tenth of the table (at least 1,000, or
any number while the table has never been analysed), a worker runs `ANALYZE` on it: at most
once per table every 30 seconds, and `ANALYZE` reads a fixed-size sample, so its cost does not
grow with the table (`CIBLE_STATISTICS_REFRESH=0` leaves it all to autovacuum). Nothing to do on SQLite, whose planner keeps no such statistics unasked.
"""

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Model

MIN_ROWS = 1_000
SHARE = 0.1
THROTTLE_SECONDS = 30


def _written_key(table: str) -> str:
    return f"cible:statistics:{table}:written"


def rows_written(*, model: type[Model], rows: int, wait: bool = False) -> bool:
    """Count rows just written into the model's table; queue its analysis when they change a large share
    of it. True when an analysis was queued (or run).

    `wait`: the caller reads the table at once (a worker's job that writes a million scores, then
    ranks them), so the analysis runs now, in the caller, rather than in a task."""
    if connection.vendor != "postgresql" or rows <= 0 or not settings.CIBLE_STATISTICS_REFRESH:
        return False
    table = model._meta.db_table
    key = _written_key(table)
    cache.add(key, 0, timeout=None)
    written = cache.incr(key, rows)
    if written < MIN_ROWS:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        row = cursor.fetchone()
    estimate = row[0] if row else -1
    if estimate >= 0 and written < SHARE * estimate:  # -1: never analysed
        return False
    if wait:
        table_analyze(table=table)
        return True
    from core.tasks import table_analyze_task  # the task module imports this one

    if cache.add(f"cible:statistics:{table}:queued", 1, timeout=THROTTLE_SECONDS):
        table_analyze_task.delay(table=table)
        return True
    # Analysed within the last 30 seconds: once more when the window ends, so that the tail of a
    # load that stops inside the window is counted too.
    if cache.add(f"cible:statistics:{table}:trailing", 1, timeout=THROTTLE_SECONDS):
        table_analyze_task.apply_async(kwargs={"table": table}, countdown=THROTTLE_SECONDS)
    return False


def table_analyze(*, table: str) -> None:
    """`ANALYZE` one of Cible's tables (named by the code, never by a client)."""
    if table not in connection.introspection.table_names():
        raise ValueError(f"Not a table: {table!r}")
    cache.set(_written_key(table), 0, timeout=None)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
