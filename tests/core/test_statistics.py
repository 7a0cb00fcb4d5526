"""A bulk load refreshes its table's planner statistics in a worker task, at most every 30 seconds."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from core import statistics
from customers.models import Event
from tests.factories import make_profile

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def estimate(table: str) -> float:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        return cursor.fetchone()[0]


def events(n: int, start: int = 0) -> list[dict]:
    now = timezone.now().isoformat()
    return [
        {"idempotency_key": f"k{i}", "external_id": "C1", "type": "page_view", "channel": "web", "occurred_at": now}
        for i in range(start, start + n)
    ]


def test_an_ingested_batch_large_for_its_table_is_analysed_then_throttled(
    marketer, workspace, eager_tasks, monkeypatch
):
    cache.clear()
    make_profile(workspace=workspace, external_id="C1")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_event")  # an empty table, known to be empty
    assert estimate("customers_event") == 0
    url = "/api/workspaces/maison/ingest/events/"
    assert marketer.post(url, {"items": events(1_500)}, format="json").json()["created"] == 1_500
    # ANALYZE reads every row of so small a table: the estimate is exact.
    assert estimate("customers_event") == Event.objects.count() == 1_500
    # Another large batch within 30 seconds waits for the end of the window (a task with a countdown) ...
    queued = []
    monkeypatch.setattr(
        "core.tasks.table_analyze_task.apply_async", lambda kwargs, countdown: queued.append((kwargs, countdown))
    )
    assert marketer.post(url, {"items": events(2_000, start=1_500)}, format="json").json()["created"] == 2_000
    assert estimate("customers_event") == 1_500
    assert queued == [({"table": "customers_event"}, 30)]
    # ... which counts the whole load.
    statistics.table_analyze(**queued[0][0])
    assert estimate("customers_event") == 3_500


def test_small_writes_to_a_large_table_are_left_to_autovacuum(workspace, eager_tasks):
    cache.clear()
    make_profile(workspace=workspace, external_id="C1")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_event")
        cursor.execute("UPDATE pg_class SET reltuples = 1000000 WHERE oid = 'customers_event'::regclass")
    assert statistics.rows_written(model=Event, rows=5_000) is False  # 0.5 % of the table
    assert statistics.rows_written(model=Event, rows=96_000) is True  # 10.1 % now


def test_only_cibles_tables_are_analysed():
    with pytest.raises(ValueError):
        statistics.table_analyze(table="customers_event; DROP TABLE x")
