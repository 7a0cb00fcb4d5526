import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Role
from config.queues import queue_names
from tests.factories import make_user, make_workspace, token_for

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config, items):
    postgres = connection.vendor == "postgresql"
    for item in items:
        if item.get_closest_marker("postgres") and not postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (DATABASE_URL)"))


@pytest.fixture
def workspace(db):
    return make_workspace(slug="maison")


@pytest.fixture
def other_workspace(db):
    return make_workspace(slug="rival")


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    client.user = user
    return client


@pytest.fixture
def client_for(workspace):
    """An API client for a new member of `workspace` with the given role."""

    def make(role: str = Role.MARKETER, ws=None):
        return _client(make_user(workspace=ws or workspace, role=role))

    return make


@pytest.fixture
def marketer(client_for):
    return client_for(Role.MARKETER)


@pytest.fixture
def viewer(client_for):
    return client_for(Role.VIEWER)


@pytest.fixture
def manager(client_for):
    return client_for(Role.MANAGER)


@pytest.fixture
def outsider(other_workspace):
    """An admin of another workspace: must see nothing of `workspace`."""
    return _client(make_user(workspace=other_workspace, role=Role.ADMIN))


def start_worker(db_name: str, queue: str | None, log_path: Path) -> subprocess.Popen:
    """A real `celery worker` process on the test broker and the test database, consuming `queue`
    (names separated by commas; None: started without -Q, as Celery users start one); returns once ready."""
    env = {**os.environ, "CIBLE_TEST_DATABASE_NAME": db_name, "DJANGO_SETTINGS_MODULE": "config.test_settings"}
    selected = ["-Q", queue] if queue else []
    subprocess.run(
        [sys.executable, "-m", "celery", "-A", "config", "purge", "-f", *selected],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    log = open(log_path, "w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            *selected,
            "-l",
            "INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "ready." in log_path.read_text():
            return process
        if process.poll() is not None:
            raise RuntimeError(log_path.read_text())
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError("The Celery worker did not start:\n" + log_path.read_text())


def stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real Celery worker process on the real broker, reading the test database."""
    from django.conf import settings

    if not settings.CELERY_BROKER_URL:
        pytest.skip("needs REDIS_URL: the embedded mode runs tasks in-process")
    with django_db_blocker.unblock():
        db_name = connection.settings_dict["NAME"]
    queues = ",".join(queue_names(settings.CELERY_TASK_DEFAULT_QUEUE).values())
    process = start_worker(db_name, queues, ROOT / ".pytest-worker.log")
    yield process
    stop_worker(process)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


@pytest.fixture
def eager_tasks():
    """Run Celery tasks in-process for this test (the embedded mode's behaviour)."""
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


class Receiver(BaseHTTPRequestHandler):
    """A real local HTTP receiver: answers 500 to the first `fail` calls, then 200; keeps what it got."""

    fail = 0
    fail_status = 500
    fail_body = b"busy"  # what a provider answers when it refuses: it may echo the recipient
    calls: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls.append((dict(self.headers), body))
        failing = len(type(self).calls) <= type(self).fail
        self.send_response(type(self).fail_status if failing else 200)
        self.end_headers()
        self.wfile.write(type(self).fail_body if failing else b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    Receiver.calls = []
    Receiver.fail = 0
    Receiver.fail_status = 500
    Receiver.fail_body = b"busy"
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Receiver, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
