"""Helpers shared by the benchmarks: the dedicated PostgreSQL database and the environment."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/cible_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

# Production mode (PostgreSQL + Redis), reachable on loopback only, throttles out of the way.
SERVER_ENV = {
    "DJANGO_SECRET_KEY": "bench",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DJANGO_SECURE_SSL_REDIRECT": "false",
    "CIBLE_THROTTLE_INGEST": "100000/minute",
    "CIBLE_THROTTLE_USER": "100000/minute",
}


def postgres_env(database_url: str, redis_url: str = DEFAULT_REDIS_URL) -> dict[str, str]:
    env = {**os.environ, **SERVER_ENV, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    env.pop("SQLITE_PATH", None)
    return env


def sqlite_env(path: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_ALLOWED_HOSTS")}
    env["SQLITE_PATH"] = path
    return env


def check_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    if host not in LOOPBACK:
        sys.exit(f"Refusing {url}: the benchmarks only talk to loopback addresses.")


def ensure_database(database_url: str) -> None:
    """Create the benchmark database with psql when it does not exist yet."""
    check_loopback(database_url)
    parts = urlsplit(database_url)
    name = unquote(parts.path.lstrip("/"))
    if not name.replace("_", "").isalnum():
        sys.exit(f"Unexpected database name {name!r}.")
    psql = ["psql", "-X", "-q", "-h", parts.hostname, "-p", str(parts.port or 5432), "-d", "postgres"]
    if parts.username:
        psql += ["-U", unquote(parts.username)]
    env = {**os.environ}
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    found = subprocess.run(
        [*psql, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if found != "1":
        print(f"Creating database {name} ...", flush=True)
        subprocess.run([*psql, "-c", f'CREATE DATABASE "{name}"'], env=env, check=True)


def migrate(env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=PROJECT, env=env, check=True)


def django_setup(env: dict[str, str]) -> None:
    """Configure Django in this process against the same database as the subprocesses."""
    os.environ.clear()
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if str(PROJECT) not in sys.path:
        sys.path.insert(0, str(PROJECT))
    import django

    django.setup()


def bench_workspace(database_url: str, slug: str, seed: int):
    """Django set up in this process on the benchmark database (migrated), and the workspace `slug`,
    seeded with `seed` profiles by seed_demo when it is missing (exits when it is and `seed` is 0)."""
    check_loopback(database_url)
    ensure_database(database_url)
    env = postgres_env(database_url, DEFAULT_REDIS_URL)
    migrate(env)
    os.environ.update({k: v for k, v in env.items() if k in ("DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY")})
    os.environ["DJANGO_ALLOWED_HOSTS"] = env["DJANGO_ALLOWED_HOSTS"]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from accounts.models import Workspace

    if not Workspace.objects.filter(slug=slug).exists():
        if not seed:
            sys.exit(f"No workspace {slug!r}: seed it first, or pass --seed 1000000.")
        command = [sys.executable, "manage.py", "seed_demo", "--workspace", slug, "--profiles", str(seed)]
        subprocess.run(command, cwd=PROJECT, env=env, check=True)
    return Workspace.objects.get(slug=slug)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_user():
    from django.contrib.auth import get_user_model

    User = get_user_model()
    user = User.objects.filter(username="bench-marketer").first()
    if user is None:
        user = User.objects.create_user(username="bench-marketer", email="bench@example.com", password=None)
    return user


def start_gunicorn(env: dict[str, str], port: int, workers: int, timeout: int, log: Path) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "--timeout",
        str(timeout),
    ]
    with open(log, "wb") as out:
        # Own process group: the arbiter and its workers are stopped together.
        return subprocess.Popen(
            command, cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_gunicorn(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def wait_ready(base: str, proc: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            # 503 only says that no worker heartbeats (none runs here): the server answers.
            if requests.get(f"{base}/health/", timeout=10).status_code in (200, 503):
                return
        except (requests.ConnectionError, requests.Timeout):  # still booting, or a first slow answer
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn not ready after {seconds:.0f} s:\n{log.read_text()[-3000:]}")
