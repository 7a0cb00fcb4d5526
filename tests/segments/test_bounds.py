"""Bounded work and definitions that can always be computed.

* A definition whose arithmetic cannot be done (an age of 9e18 years, dates in year 1 or 9999) is
  refused when saved and when previewed, with a 400 naming the path and the accepted range.
* A preview that runs past CIBLE_PREVIEW_TIMEOUT is stopped by the database and answers a 400 that
  says what to narrow; an audience computation past CIBLE_TASK_STATEMENT_TIMEOUT is recorded as
  failed with that reason, and the recovery does not run it again.

The slow queries are made slow by another connection holding a lock on the events table: the
segment's query waits for it, deterministically, until the statement timeout stops it.
"""

from contextlib import contextmanager

import psycopg
import pytest
from django.db import OperationalError, connection
from django.urls import reverse

from audiences.models import Audience, AudienceRun
from audiences.services import audience_compute, audiences_recover
from core.sql import is_statement_timeout, statement_timeout
from segments.models import Segment
from segments.services import segment_create
from tests.factories import make_profile

RECENT = {"event": "page_view", "within": "P30D"}


def url(name, **kwargs):
    return reverse(name, kwargs={"workspace": "maison", **kwargs})


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        (
            {"field": "age", "op": "gte", "value": 9223372036854775807},
            "definition.value: an age is a number of years from 0 to 150.",
        ),
        (
            {"all": [{"field": "age", "op": "between", "value": [18, 2100]}]},
            "definition.all[0].value: an age is a number of years from 0 to 150.",
        ),
        (
            {"orders": {"between": ["0001-01-01", "9999-12-31"]}},
            "definition.orders.between: expected dates between 1900-01-01 and 2999-12-31.",
        ),
        (
            {"orders": {"after": "9999-12-31"}},
            "definition.orders.after: expected a date between 1900-01-01 and 2999-12-31.",
        ),
        (
            {"event": "page_view", "last": {"before": "0001-01-01T00:00:00"}},
            "definition.last.before: expected a date between 1900-01-01 and 2999-12-31.",
        ),
        (
            {"event": "page_view", "count": {"gte": 1e30}},
            "definition.count.gte: expected a number of at most 1,000,000,000.",
        ),
    ],
)
def test_uncomputable_definitions_are_refused_at_save_and_at_preview(marketer, workspace, definition, message):
    r = marketer.post(url("segment-list"), {"name": "Never", "definition": definition}, format="json")
    assert r.status_code == 400
    assert r.json() == {"definition": [{"message": message, "code": "invalid_rule"}]}
    assert not Segment.objects.exists()
    r = marketer.post(url("segment-preview-definition"), {"definition": definition}, format="json")
    assert r.status_code == 400
    assert r.json() == {"definition": [{"message": message, "code": "invalid_rule"}]}


def test_the_edges_of_the_accepted_ranges_compute(marketer, workspace):
    make_profile(workspace=workspace, external_id="old")
    definition = {
        "all": [
            {"field": "age", "op": "between", "value": [0, 150]},
            {"not": {"orders": {"between": ["1900-01-01", "2999-12-31"]}}},
        ]
    }
    r = marketer.post(url("segment-preview-definition"), {"definition": definition}, format="json")
    assert r.status_code == 200, r.json()
    assert r.json()["count"] == 0  # no birth date: no age
    r = marketer.post(
        url("segment-preview-definition"), {"definition": {"not": definition}, "as_of": "1900-01-01"}, format="json"
    )
    assert r.status_code == 200, r.json()
    assert r.json()["count"] == 1


def test_an_as_of_outside_the_accepted_range_is_refused(viewer, workspace):
    r = viewer.post(url("segment-preview-definition"), {"definition": RECENT, "as_of": "0001-01-01"}, format="json")
    assert r.status_code == 400
    assert r.json() == {
        "as_of": [{"message": "as_of must be between 1900-01-01 and 2999-12-31.", "code": "out_of_range"}]
    }


def test_a_statement_past_its_bound_is_stopped_and_recognised(db):
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
    with pytest.raises(OperationalError) as stopped:
        with statement_timeout(seconds=0.3), connection.cursor() as cursor:
            cursor.execute(endless)
    assert is_statement_timeout(stopped.value)
    with connection.cursor() as cursor:  # the bound does not outlive the block
        cursor.execute("SELECT 1")
        if connection.vendor == "postgresql":
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] == "0"


@contextmanager
def events_locked():
    """Another session holds the events table, so any query that reads it waits."""
    db = connection.settings_dict
    other = psycopg.connect(
        dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None, host=db["HOST"], port=db["PORT"] or 5432
    )
    try:
        with other.transaction():
            other.execute("SET lock_timeout = '5s'")
            other.execute("LOCK TABLE customers_event IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        other.close()


@pytest.mark.postgres
def test_a_preview_that_runs_too_long_is_stopped_with_a_clear_400(viewer, workspace, settings):
    settings.CIBLE_PREVIEW_TIMEOUT = 0.5
    make_profile(workspace=workspace)
    with events_locked():
        r = viewer.post(url("segment-preview-definition"), {"definition": RECENT}, format="json")
    assert r.status_code == 400
    (error,) = r.json()["definition"]
    assert error["code"] == "too_slow"
    assert error["message"].startswith("The preview took longer than 0.5 s and was stopped. Narrow the rules")
    # The connection works on, without the bound.
    r = viewer.post(url("segment-preview-definition"), {"definition": RECENT}, format="json")
    assert r.status_code == 200 and r.json()["count"] == 0


@pytest.mark.postgres
def test_an_audience_past_its_statement_bound_fails_with_the_reason_and_is_not_retried(workspace, settings):
    settings.CIBLE_TASK_STATEMENT_TIMEOUT = 0.5
    make_profile(workspace=workspace)
    segment = segment_create(workspace=workspace, name="Recent", definition=RECENT)
    with events_locked():
        run = audience_compute(segment_id=segment.pk)
    assert run.status == AudienceRun.Status.FAILED
    assert run.error == "A query ran longer than 0.5 s and was stopped: narrow the segment's rules, then refresh again."
    audience = Audience.objects.get(segment=segment)
    assert (audience.status, audience.current_version, audience.lease_token) == (Audience.Status.FAILED, 0, None)
    assert audiences_recover() == 0  # nothing lost, nothing queued again
    # Once the query can run, the next refresh succeeds.
    assert audience_compute(segment_id=segment.pk).status == AudienceRun.Status.SUCCEEDED
