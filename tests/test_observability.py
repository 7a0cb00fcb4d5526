"""Observability: request ids, the log context of requests and tasks, /health/, Sentry left off without a DSN."""

import io
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sentry_sdk
from celery import shared_task
from django.test import override_settings

from config.logging import logging_settings
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parent.parent
# Nothing listens on port 1: the connection is refused at once.
CLOSED_REDIS = "redis://127.0.0.1:1/0"
EMBEDDED = {"REDIS_URL": "", "CELERY_TASK_ALWAYS_EAGER": True}


@pytest.fixture
def json_log_lines():
    """Every log line, parsed, as production mode writes it (the formatter logging_settings() configures)."""
    options = dict(logging_settings(json_lines=True)["formatters"]["structlog"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(options.pop("()")(**options))
    root = logging.getLogger()
    root.addHandler(handler)
    lines: list[dict] = []

    def read() -> list[dict]:
        lines[:] = [json.loads(line) for line in stream.getvalue().splitlines()]
        return lines

    yield read
    root.removeHandler(handler)


@shared_task(name="tests.test_observability.log_task")
def log_task(profile_id: int) -> None:
    logging.getLogger("tests.observability").info("profile %s touched", profile_id)


@pytest.mark.django_db
@override_settings(**EMBEDDED)
def test_a_sane_x_request_id_is_kept_and_echoed(client):
    r = client.get("/health/", HTTP_X_REQUEST_ID="lb-7f3a.2024_01-z")
    assert r["X-Request-ID"] == "lb-7f3a.2024_01-z"


@pytest.mark.django_db
@override_settings(**EMBEDDED)
def test_a_request_without_an_id_gets_a_fresh_one(client):
    first, second = client.get("/health/")["X-Request-ID"], client.get("/health/")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and re.fullmatch(r"[0-9a-f]{32}", second)
    assert first != second


@pytest.mark.django_db
@override_settings(**EMBEDDED)
@pytest.mark.parametrize("supplied", ["two words", "x" * 65, "<script>", "a\\b", ""])
def test_an_unsafe_x_request_id_is_replaced(client, supplied):
    r = client.get("/health/", HTTP_X_REQUEST_ID=supplied)
    assert re.fullmatch(r"[0-9a-f]{32}", r["X-Request-ID"])


def test_a_log_line_during_an_api_request_carries_the_request_id_and_workspace(marketer, json_log_lines):
    r = marketer.get("/api/workspaces/maison/members/999999/", HTTP_X_REQUEST_ID="req-42")
    assert r.status_code == 404 and r["X-Request-ID"] == "req-42"
    [line] = [line for line in json_log_lines() if line["logger"] == "django.request"]
    assert line["event"] == "Not Found: /api/workspaces/maison/members/999999/"
    assert (line["request_id"], line["workspace"], line["level"]) == ("req-42", "maison", "warning")
    assert line["status_code"] == 404 and "request" not in line
    assert line["timestamp"].endswith("Z")


def test_the_next_request_starts_with_a_clean_context(marketer, json_log_lines):
    marketer.get("/api/workspaces/maison/members/999999/", HTTP_X_REQUEST_ID="first")
    marketer.get("/no-such-page/", HTTP_X_REQUEST_ID="second")
    second = [line for line in json_log_lines() if line["request_id"] == "second"]
    assert [line["event"] for line in second] == ["Not Found: /no-such-page/"]
    assert "workspace" not in second[0]


def test_a_task_s_log_lines_carry_its_id_and_name_and_the_request_s_context_comes_back(json_log_lines):
    import structlog

    structlog.contextvars.clear_contextvars()
    with structlog.contextvars.bound_contextvars(request_id="around-the-task"):
        log_task.apply(args=[7], task_id="task-1")
        logging.getLogger("tests.observability").info("after the task")
    during, after = [line for line in json_log_lines() if line["logger"] == "tests.observability"]
    assert during["event"] == "profile 7 touched"
    assert (during["task_id"], during["task_name"]) == ("task-1", "tests.test_observability.log_task")
    assert during["request_id"] == "around-the-task"
    assert after["request_id"] == "around-the-task" and "task_id" not in after and "task_name" not in after


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("json_lines", [True, False])
def test_a_database_error_s_row_values_stay_out_of_the_logs(json_lines, workspace):
    """An IntegrityError's DETAIL quotes the row (an external id, an e-mail): logged without it."""
    from django.db import IntegrityError, transaction

    from customers.models import Profile

    options = dict(logging_settings(json_lines=json_lines)["formatters"]["structlog"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(options.pop("()")(**options))
    logger = logging.getLogger("tests.observability")
    logger.addHandler(handler)
    taken = "-".join(("CRM", "ZOE", "1"))  # not spelt out: a traceback quotes the source lines
    Profile.objects.create(workspace=workspace, external_id=taken)
    try:
        with transaction.atomic():
            Profile.objects.create(workspace=workspace, external_id=taken)
    except IntegrityError:
        logger.exception("Import failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "Import failed" in text and "IntegrityError" in text
    assert "CRM-ZOE-1" not in text


def test_the_console_format_of_the_embedded_default_carries_the_context_too(marketer):
    options = dict(logging_settings(json_lines=False)["formatters"]["structlog"])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(options.pop("()")(**options))
    logging.getLogger().addHandler(handler)
    try:
        marketer.get("/api/workspaces/maison/members/999999/", HTTP_X_REQUEST_ID="req-43")
    finally:
        logging.getLogger().removeHandler(handler)
    # Colours appear when stderr is a terminal (pytest -s): the escapes are not part of the fields.
    text = re.sub(r"\x1b\[[0-9;]*m", "", stream.getvalue())
    [line] = [line for line in text.splitlines() if "Not Found" in line]
    assert "request_id=req-43" in line and "workspace=maison" in line


@pytest.mark.django_db
@override_settings(**EMBEDDED)
def test_health_answers_200_with_every_check_on_the_embedded_default(client):
    r = client.get("/health/")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "checks": {
            "database": {"status": "ok"},
            "redis": {"status": "not_configured"},
            "worker": {"status": "embedded"},
            "queues": {"status": "embedded"},
        },
    }
    assert "no-cache" in r["Cache-Control"]


@pytest.mark.django_db
@override_settings(REDIS_URL=CLOSED_REDIS, CELERY_TASK_ALWAYS_EAGER=False)
def test_health_answers_503_when_redis_is_unreachable(client, json_log_lines):
    r = client.get("/health/", HTTP_X_REQUEST_ID="probe-1")
    assert r.status_code == 503
    assert r.json() == {
        "status": "unavailable",
        "checks": {
            "database": {"status": "ok"},
            "redis": {"status": "error", "error": "ConnectionError"},
            "worker": {"status": "unknown"},
            "queues": {"status": "unknown"},
        },
    }
    [line] = [line for line in json_log_lines() if line["event"] == "health_unavailable"]
    assert line["failed"] == ["redis", "worker", "queues"] and line["request_id"] == "probe-1"


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_running_worker_s_heartbeat_makes_health_answer_200(celery_worker_process, client):
    def healthy():
        r = client.get("/health/")
        return r.status_code == 200 and r.json()

    body = wait_for(healthy, timeout=30, interval=0.5)
    assert body["checks"]["redis"] == {"status": "ok"}
    assert body["checks"]["worker"]["status"] == "ok"
    assert 0 <= body["checks"]["worker"]["last_heartbeat_age_s"] <= 60
    queues = body["checks"]["queues"]
    assert queues["status"] == "ok" and len(queues["queues"]) == 3
    assert all(queue["consumed"] for queue in queues["queues"].values())


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_health_fails_for_a_queue_no_worker_takes_and_says_how_long_its_oldest_job_waited(client, settings):
    import redis as redis_lib

    from core.workers import queue_heartbeat_key, queue_names

    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_TASK_DEFAULT_QUEUE = "cible-probe"  # queues no running test worker consumes
    names = queue_names()
    client_redis = redis_lib.Redis.from_url(settings.REDIS_URL)
    now = time.time()
    client_redis.set(queue_heartbeat_key(names["default"]), now)
    client_redis.set(queue_heartbeat_key(names["ticks"]), now)
    client_redis.delete(queue_heartbeat_key(names["long"]), names["long"])
    # a message sent 12 minutes ago, as the publish hook stamps them
    client_redis.lpush(names["long"], json.dumps({"headers": {"cible_sent_at": f"{now - 720:.3f}"}, "body": ""}))
    try:
        body = client.get("/health/").json()
        queues = body["checks"]["queues"]
        assert body["status"] == "unavailable" and queues["failed"] == [names["long"]]
        long = queues["queues"][names["long"]]
        assert (long["status"], long["consumed"], long["waiting"]) == ("no_worker", False, 1)
        assert 700 < long["oldest_wait_s"] < 800
    finally:
        client_redis.delete(names["long"])


def test_sentry_is_not_initialised_without_a_dsn():
    if os.environ.get("SENTRY_DSN"):
        pytest.skip("SENTRY_DSN is set in this environment")
    assert not sentry_sdk.get_client().is_active()


@pytest.mark.slow
def test_sentry_is_initialised_when_a_dsn_is_set():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "DJANGO_", "SQLITE_"))}
    # A DSN to a closed port: init() sends nothing until an event is captured.
    env.update(DJANGO_SETTINGS_MODULE="config.settings", SENTRY_DSN="http://public@127.0.0.1:1/1")
    code = "import django, sentry_sdk; django.setup(); c = sentry_sdk.get_client(); print(c.is_active(), c.options['send_default_pii'])"
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_admin_says_how_long_a_job_waited_and_that_no_worker_takes_it(client, settings, workspace):
    from datetime import timedelta

    import redis as redis_lib
    from django.utils import timezone

    from accounts.models import Role
    from core.workers import queue_heartbeat_key, queue_names, queue_states_forget
    from customers.models import ImportJob
    from tests.factories import make_user

    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_TASK_DEFAULT_QUEUE = "cible-probe"
    from config.queues import task_routes

    settings.CELERY_TASK_ROUTES = task_routes("cible-probe")
    names = queue_names()
    client_redis = redis_lib.Redis.from_url(settings.REDIS_URL)
    client_redis.set(queue_heartbeat_key(names["default"]), time.time())
    client_redis.delete(queue_heartbeat_key(names["long"]))
    queue_states_forget()
    job = ImportJob.objects.create(
        workspace=workspace, kind="profiles", filename="p.csv", content="x", content_sha256="0"
    )
    ImportJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(minutes=12, seconds=5))
    user = make_user(workspace=workspace, role=Role.ADMIN)
    user.is_staff = True
    user.save()
    client.force_login(user)
    page = client.get("/admin/customers/importjob/").content.decode()
    assert "queued for 12 min: no worker takes long jobs" in page
    client_redis.set(queue_heartbeat_key(names["long"]), time.time())
    queue_states_forget()  # the admin reads the queues at most every few seconds
    page = client.get(f"/admin/customers/importjob/{job.pk}/change/").content.decode()
    assert "queued for 12 min" in page and "no worker" not in page
