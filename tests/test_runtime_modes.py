"""Start-up of both runtime modes, as separate processes with their own environment."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(ROOT / "manage.py")]
PRODUCTION_ENV = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/cible",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    "DJANGO_SECRET_KEY": "x7#kq0-production-like-secret-key-with-enough-entropy-93jf8s7d6f5g4h3j2k1",
    "DJANGO_ALLOWED_HOSTS": "cible.example.com",
}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "DJANGO_", "SQLITE_"))}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_check_deploy_passes_with_the_production_variables(tmp_path):
    env = _env(**PRODUCTION_ENV, DJANGO_STATIC_ROOT=str(tmp_path / "static"))
    subprocess.run([*MANAGE, "collectstatic", "--no-input", "-v0"], env=env, check=True, cwd=ROOT)
    result = subprocess.run(
        [*MANAGE, "check", "--deploy", "--fail-level", "WARNING"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_production_mode_without_collected_static_files_fails_naming_the_command(tmp_path):
    env = _env(**PRODUCTION_ENV, DJANGO_STATIC_ROOT=str(tmp_path / "never-collected"))
    result = subprocess.run([*MANAGE, "check", "--deploy"], env=env, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0
    assert "cible.E001" in result.stderr and "python manage.py collectstatic --no-input" in result.stderr
    # and the WSGI application refuses to start rather than answer 500 on every admin page
    started = subprocess.run(
        [sys.executable, "-c", "import config.wsgi"], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert started.returncode != 0
    assert "ImproperlyConfigured" in started.stderr and "collectstatic --no-input" in started.stderr


@pytest.mark.slow
def test_production_mode_without_a_secret_key_fails_at_start_up():
    env = _env(**{k: v for k, v in PRODUCTION_ENV.items() if k != "DJANGO_SECRET_KEY"})
    result = subprocess.run([*MANAGE, "check"], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.slow
def test_the_embedded_default_seeds_a_demo_and_serves_the_api(tmp_path):
    """No configuration at all: SQLite, tasks in-process, the demo, then real HTTP calls."""
    env = _env(SQLITE_PATH=str(tmp_path / "cible.sqlite3"))
    subprocess.run([*MANAGE, "migrate", "--no-input", "-v0"], env=env, check=True, cwd=ROOT)
    seeded = subprocess.run(
        [*MANAGE, "seed_demo", "--profiles", "300"], env=env, check=True, cwd=ROOT, capture_output=True, text=True
    ).stdout
    assert "Seeded 300 profiles" in seeded
    token = re.search(r"API token of admin: (\w+)", seeded).group(1)
    port = _free_port()
    server = subprocess.Popen(
        [*MANAGE, "runserver", "--noreload", f"127.0.0.1:{port}"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/health/", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        workspaces = api.get(f"{base}/api/workspaces/", timeout=10).json()["results"]
        assert [w["slug"] for w in workspaces] == ["demo"]
        questions = api.get(f"{base}/api/workspaces/demo/survey-questions/", timeout=10).json()["results"]
        assert {q["question"]: q["label"] for q in questions}["preferred_channel"] == "Canal préféré"
        profiles = api.get(f"{base}/api/workspaces/demo/profiles/", params={"page_size": 5}, timeout=10).json()
        # 300 people, and 20 anonymous visitors whose browsing was not stitched to a login (the
        # other 20 logged in as customers: the match rules merged them).
        assert profiles["count"] == 320 and len(profiles["results"]) == 5
        visitors = api.get(f"{base}/api/workspaces/demo/profiles/", params={"anonymous": "true"}, timeout=10).json()
        assert visitors["count"] == 20
        report = api.post(
            f"{base}/api/workspaces/demo/ingest/events/",
            json={
                "items": [
                    {
                        "idempotency_key": "smoke-1",
                        "external_id": profiles["results"][0]["external_id"],
                        "type": "cart_abandoned",
                        "channel": "web",
                        "occurred_at": "2026-01-01T10:00:00+01:00",
                    }
                ]
            },
            timeout=10,
        ).json()
        assert report["created"] == 1
        # A CSV import is a task: in the embedded mode it has run by the time the upload returns.
        job = api.post(
            f"{base}/api/workspaces/demo/imports/",
            data={"kind": "profiles"},
            files={"file": ("p.csv", b"external_id,city\nNEW-1,Rennes\n", "text/csv")},
            timeout=10,
        ).json()
        assert (job["status"], job["created"]) == ("succeeded", 1)
        assert requests.get(f"{base}/admin/login/", timeout=10).status_code == 200
        assert requests.get(f"{base}/api/schema/", timeout=30).status_code == 200
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=10)
