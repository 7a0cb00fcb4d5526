"""Helpers shared by the benchmarks: the dedicated PostgreSQL database and the environment."""

import os
import subprocess
import sys
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
