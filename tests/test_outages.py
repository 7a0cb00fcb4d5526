"""A dependency down or unresponsive, against a real server (gunicorn in production mode): the
answers stay honest and bounded. /health/ fails fast naming the check, API calls answer JSON 503
with Retry-After, liveness stays 200, and a worker started without -Q consumes every queue."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
import requests
from django.conf import settings
from django.db import connection

from accounts.models import Role
from core.workers import queue_heartbeat_key, queue_names
from tests.conftest import start_worker, stop_worker
from tests.factories import make_user, token_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FrozenServer:
    """Accepts TCP connections and never answers: a server that is up and hung (SIGSTOPped)."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.port = self.socket.getsockname()[1]
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.socket.close()
        for conn in self.held:
            conn.close()


@pytest.fixture(scope="module")
def static_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("static")
    env = {**os.environ, "DJANGO_STATIC_ROOT": str(root), "DJANGO_SETTINGS_MODULE": "config.settings"}
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"], env=env, cwd=ROOT, check=True)
    return root


def serve(static_root: Path, database_url: str, redis_url: str, tmp_path: Path):
    """gunicorn in production mode on those dependencies; returns (base url, process)."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DJANGO_STATIC_ROOT": str(static_root),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_CONNECT_TIMEOUT": "2",
        "DATABASE_CONN_MAX_AGE": "0",
        "DJANGO_SECURE_SSL_REDIRECT": "0",  # as behind a TLS proxy: plain HTTP here
    }
    env.pop("DJANGO_DEBUG", None)
    log = open(tmp_path / "gunicorn.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", "2"]
        + ["--timeout", "120"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/health/live/", timeout=5).status_code == 200:
                return base, process
        except requests.RequestException:  # not listening yet, or its workers still booting
            time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError((tmp_path / "gunicorn.log").read_text())


def stop(process) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


def _database_url(port: int | None = None, name: str | None = None) -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@127.0.0.1:{port or db['PORT'] or 5432}/{name or db['NAME']}"


def test_a_frozen_database_fails_health_in_seconds_and_the_api_answers_503(static_root, tmp_path):
    frozen = FrozenServer()
    base, process = serve(static_root, _database_url(port=frozen.port), settings.REDIS_URL, tmp_path)
    try:
        started = time.monotonic()
        r = requests.get(f"{base}/health/", timeout=30)
        took = time.monotonic() - started
        assert r.status_code == 503 and r.headers["Content-Type"] == "application/json"
        assert r.json()["checks"]["database"]["status"] == "error"
        assert took < 8, took  # was 120 s, then gunicorn's HTML 500
        # A second probe while the first check still waits is answered at once, no thread piled up.
        started = time.monotonic()
        assert requests.get(f"{base}/health/", timeout=30).status_code == 503
        assert time.monotonic() - started < 8
        assert requests.get(f"{base}/health/live/", timeout=5).status_code == 200
        api = requests.get(f"{base}/api/workspaces/", headers={"Authorization": "Bearer x"}, timeout=30)
        assert api.status_code == 503, api.text[:300]
        assert api.json()["code"] == "unavailable" and api.headers["Retry-After"] == "30"
    finally:
        stop(process)
        frozen.close()


def test_a_stopped_database_gives_json_503_to_the_api_and_a_503_page_to_the_admin(static_root, tmp_path):
    closed = _free_port()  # nothing listens there
    base, process = serve(static_root, _database_url(port=closed), settings.REDIS_URL, tmp_path)
    try:
        for _ in range(5):
            api = requests.get(f"{base}/api/workspaces/", headers={"Authorization": "Bearer abc"}, timeout=30)
            assert api.status_code == 503 and api.json()["code"] == "unavailable"
            assert int(api.headers["Retry-After"]) > 0
        health = requests.get(f"{base}/health/", timeout=30)
        assert health.status_code == 503 and health.json()["checks"]["database"]["error"] == "OperationalError"
        admin = requests.get(f"{base}/admin/", cookies={"sessionid": "s" * 32}, timeout=30)
        assert admin.status_code == 503 and "Unavailable" in admin.text
        log = (tmp_path / "gunicorn.log").read_text()
        # logged once per interval and worker process, not once per request
        assert 1 <= log.count("dependency_unavailable") <= 2, log[-2000:]
    finally:
        stop(process)


@pytest.mark.django_db(transaction=True)
def test_a_stopped_redis_gives_json_503_with_retry_after(static_root, tmp_path, workspace):
    token = token_for(make_user(workspace=workspace, role=Role.ADMIN))
    closed = _free_port()
    base, process = serve(static_root, _database_url(), f"redis://127.0.0.1:{closed}/0", tmp_path)
    try:
        api = requests.get(f"{base}/api/workspaces/", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert api.status_code == 503, api.text[:300]
        assert api.json()["code"] == "unavailable" and "redis" in api.json()["detail"]
        assert api.headers["Retry-After"] == "30"
        health = requests.get(f"{base}/health/", timeout=30).json()
        assert health["status"] == "unavailable" and health["checks"]["redis"]["status"] == "error"
        assert health["checks"]["database"]["status"] == "ok"
    finally:
        stop(process)
        connection.close()


def test_a_worker_started_without_q_consumes_every_queue(django_db_setup, django_db_blocker, tmp_path):
    client = redis.Redis.from_url(settings.REDIS_URL)
    names = list(queue_names().values())
    client.delete(*(queue_heartbeat_key(name) for name in names))
    with django_db_blocker.unblock():
        db_name = connection.settings_dict["NAME"]
    process = start_worker(db_name, None, tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(client.get(queue_heartbeat_key(name)) for name in names):
            time.sleep(0.3)
        assert all(client.get(queue_heartbeat_key(name)) for name in names), (tmp_path / "worker.log").read_text()
        log = (tmp_path / "worker.log").read_text()
        for name in names:
            assert f".> {name} " in log  # celery lists the queues it consumes
    finally:
        stop_worker(process)
