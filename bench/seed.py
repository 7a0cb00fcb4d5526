"""Demo seeding speed: `manage.py seed_demo` on PostgreSQL and on SQLite.

    . .venv/bin/activate
    python -m bench.seed                                   # 100,000 profiles on PostgreSQL, 20,000 on SQLite
    python -m bench.seed --only postgres --profiles 1000000

Each run is `python manage.py seed_demo --workspace bench-seed --reset --profiles N` in a
subprocess:
  * PostgreSQL: the dedicated database (default postgres://postgres@127.0.0.1:5432/cible_bench,
    created with psql if missing, migrated), REDIS_URL=redis://127.0.0.1:6379/14;
  * SQLite: a fresh temporary file (SQLITE_PATH, DATABASE_URL and REDIS_URL unset), migrated
    first, deleted afterwards.
The figures are the command's own ("Seeded ... in X s (Y profiles/s)": demo_seed only,
the reset and Django start-up excluded); the wall time of the whole command is shown too.
Afterwards the PostgreSQL workspace is emptied (untimed, --keep to keep it) so the database
stays small for the other benchmarks.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    PROJECT,
    check_loopback,
    ensure_database,
    migrate,
    postgres_env,
    sqlite_env,
)

WORKSPACE = "bench-seed"
SEEDED = re.compile(
    r"Seeded (?P<profiles>\d+) profiles, (?P<identities>\d+) identities, (?P<events>\d+) events, "
    r"(?P<orders>\d+) orders, (?P<consents>\d+) consent records, (?P<surveys>\d+) survey answers "
    r"in (?P<seconds>[\d.]+) s \((?P<rate>[\d,]+) profiles/s\)"
)


def seed(env: dict[str, str], profiles: int, progress: bool) -> dict:
    command = [
        sys.executable,
        "manage.py",
        "seed_demo",
        "--workspace",
        WORKSPACE,
        "--reset",
        "--profiles",
        str(profiles),
    ]
    if progress:
        command += ["-v", "2"]
    started = time.monotonic()
    done = subprocess.run(command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, text=True)
    wall = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"seed_demo failed ({done.returncode}):\n{done.stdout}")
    match = SEEDED.search(done.stdout)
    if match is None:
        sys.exit(f"Unexpected seed_demo output:\n{done.stdout}")
    result = {k: int(v) for k, v in match.groupdict().items() if k not in ("seconds", "rate")}
    result["seconds"] = float(match["seconds"])
    result["rate"] = result["profiles"] / result["seconds"] if result["seconds"] else 0.0
    result["wall"] = wall
    return result


def empty_workspace(env: dict[str, str]) -> None:
    code = (
        "from accounts.models import Workspace; from demo.seed import demo_reset; "
        f"w = Workspace.objects.filter(slug={WORKSPACE!r}).first(); w and demo_reset(workspace=w)"
    )
    subprocess.run([sys.executable, "manage.py", "shell", "-v", "0", "-c", code], cwd=PROJECT, env=env, check=True)


def report(backend: str, r: dict) -> None:
    rows = r["profiles"] + r["identities"] + r["events"] + r["orders"] + r["consents"] + r["surveys"]
    print(
        f"{backend:10s} {r['profiles']:>9,} profiles in {r['seconds']:7.1f} s = {r['rate']:>7,.0f} profiles/s "
        f"({rows / r['seconds']:,.0f} rows/s; command wall time {r['wall']:.1f} s)\n"
        f"{'':10s} rows: {r['events']:,} events, {r['orders']:,} orders, {r['identities']:,} identities, "
        f"{r['consents']:,} consents, {r['surveys']:,} survey answers; {rows:,} in all",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=100_000, help="Profiles on PostgreSQL (default 100,000).")
    parser.add_argument("--sqlite-profiles", type=int, default=20_000, help="Profiles on SQLite (default 20,000).")
    parser.add_argument("--only", choices=("postgres", "sqlite"), help="Run one backend only.")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--keep", action="store_true", help="Leave the seeded rows in the PostgreSQL database.")
    parser.add_argument("--progress", action="store_true", help="Show seed_demo's progress lines.")
    args = parser.parse_args()
    check_loopback(args.redis_url)

    if args.only in (None, "postgres"):
        env = postgres_env(args.database_url, args.redis_url)
        ensure_database(args.database_url)
        migrate(env)
        print(f"PostgreSQL: seeding {args.profiles:,} profiles ...", flush=True)
        try:
            report("PostgreSQL", seed(env, args.profiles, args.progress))
        finally:
            if not args.keep:
                empty_workspace(env)

    if args.only in (None, "sqlite"):
        folder = tempfile.mkdtemp(prefix="cible-bench-sqlite-")
        try:
            env = sqlite_env(str(Path(folder) / "bench.sqlite3"))
            migrate(env)
            print(f"SQLite: seeding {args.sqlite_profiles:,} profiles ...", flush=True)
            report("SQLite", seed(env, args.sqlite_profiles, args.progress))
        finally:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
