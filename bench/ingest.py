"""Ingestion throughput: the real HTTP API against a COPY of the same rows.

    . .venv/bin/activate
    python -m bench.ingest                      # 200,000 events, one client
    python -m bench.ingest --events 50000 --concurrency 2
    python -m bench.ingest --kind orders --events 100000 --concurrency 2
    python -m bench.ingest --kind profiles --events 100000 --concurrency 2
    python -m bench.ingest --stitching --events 50000   # identity stitching against the same batch without

What runs:
  1. the dedicated database (default postgres://postgres@127.0.0.1:5432/cible_bench) is
     created with psql if missing and migrated;
  2. a fresh workspace, a marketer and its API token are made with accounts.services;
  3. gunicorn serves config.wsgi with 2 workers on a free loopback port (production
     settings: PostgreSQL, Redis db 14, throttles raised);
  4. N events (10% as many distinct external ids) are POSTed in batches of 10,000 to
     /api/workspaces/<slug>/ingest/events/, one client after the other; with
     --concurrency C > 1 a second pass does the same with C clients into another fresh
     workspace. The JSON bodies are encoded before the clock starts, so the client's
     CPU is not counted; the server's is (parsing, validation, profile creation for
     external ids seen the first time, the INSERT, the response);
  5. the same rows as the API stores them (same types, channels, times, properties, and
     the SHA-256 of each idempotency key, which is what lands; the profiles are created
     beforehand, untimed) are COPYed into customers_event in a fresh workspace with
     psycopg 3 cursor.copy(): one COPY, one transaction, commit included.
With --kind orders (or profiles) the items are orders (profiles) and the COPY writes the
same orders (profiles) into customers_order (customers_profile).

With --stitching (events), three API passes into fresh workspaces ingest the same events,
each item also carrying its person's cookie and one item in ten a second cookie that belongs
to another (anonymous) profile, seeded beforehand untimed: "plain" sends the external ids
only, "ignored" sends the identifiers under a cookie rule that stitches nothing (the same batch
without stitching), "stitching" under the default rules, so that one item in ten merges two
profiles. The target is stitching within 1.5x of "ignored".

It prints events/s for each API pass, rows/s for the COPY and their ratio. Gunicorn is
stopped in all cases and the bench workspaces are emptied at the end (--keep to keep them).
"""

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    bench_user,
    check_loopback,
    django_setup,
    ensure_database,
    free_port,
    migrate,
    postgres_env,
    start_gunicorn,
    stop_gunicorn,
    wait_ready,
)

BATCH = 10_000


def make_events(n: int, profiles: int, seed: int) -> list[tuple]:
    """(external_id, type, channel, occurred_at, properties, key suffix), deterministic for a seed."""
    from demo.seed import CATEGORIES, CITIES, EVENT_MIX

    rng = random.Random(seed)
    kinds = [(t, c) for t, c, _ in EVENT_MIX]
    weights = [w for _, _, w in EVENT_MIX]
    now = datetime.now(UTC).replace(microsecond=0)
    picks = rng.choices(kinds, weights, k=n)
    events = []
    for i in range(n):
        kind, channel = picks[i]
        at = now - timedelta(seconds=int(365 * 86400 * rng.random() ** 1.5))
        category, price = CATEGORIES[rng.randrange(len(CATEGORIES))]
        if kind in ("product_view", "add_to_cart", "cart_abandoned"):
            properties = {"sku": f"SKU-{category[:3].upper()}-{rng.randrange(1000):03d}", "category": category}
            properties["price"] = price
        elif kind == "page_view":
            properties = {"path": f"/{category}"}
        elif kind == "search":
            properties = {"query": category}
        elif kind in ("email_open", "email_click"):
            properties = {"campaign": f"newsletter-{at:%Y-%m}"}
        elif kind == "store_visit":
            properties = {"store": rng.choice(CITIES)[0]}
        else:
            properties = {}
        events.append((f"P{rng.randrange(profiles):08d}", kind, channel, at, properties, f"ev-{i:09d}"))
    return events


def make_orders(n: int, profiles: int, seed: int) -> list[dict]:
    """Order items as the API takes them, deterministic for a seed (1 to 3 lines each)."""
    from demo.seed import CATEGORIES

    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    orders = []
    for i in range(n):
        lines = []
        for _ in range(rng.randint(1, 3)):
            category, price = CATEGORIES[rng.randrange(len(CATEGORIES))]
            lines.append(
                {
                    "sku": f"SKU-{category[:3].upper()}-{rng.randrange(1000):03d}",
                    "category": category,
                    "quantity": rng.randint(1, 3),
                    "unit_price": f"{price:.2f}",
                }
            )
        amount = sum(int(line["quantity"]) * float(line["unit_price"]) for line in lines)
        at = now - timedelta(seconds=int(730 * 86400 * rng.random()))
        orders.append(
            {
                "idempotency_key": f"or-{i:09d}",
                "external_id": f"P{rng.randrange(profiles):08d}",
                "order_id": f"O{i:09d}",
                "amount": f"{amount:.2f}",
                "ordered_at": at.isoformat(),
                "channel": rng.choice(["web", "app", "store"]),
                "items": lines,
            }
        )
    return orders


def make_profiles(n: int, seed: int) -> list[dict]:
    """Profile items as the API takes them (contact details, demographics, geography)."""
    from demo.seed import CITIES

    rng = random.Random(seed)
    profiles = []
    for i in range(n):
        city = CITIES[rng.randrange(len(CITIES))]
        profiles.append(
            {
                "idempotency_key": f"pr-{i:09d}",
                "external_id": f"P{i:08d}",
                "first_name": rng.choice(["Camille", "Louis", "Emma", "Hugo", "Léa", "Jules"]),
                "last_name": rng.choice(["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Petit"]),
                "email": f"person{i}@example.com",
                # Distinct numbers (7919 is prime to 10**8): a number two people share joins them (match
                # rules), and the run checks that every item made its own profile.
                "phone": f"+336{i * 7919 % 10**8:08d}",
                "birth_date": f"{rng.randint(1950, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "gender": rng.choice(["female", "male"]),
                "city": city[0],
                "region": city[1],
                "country": "FR",
            }
        )
    return profiles


def new_workspace(label: str, user=None):
    from accounts.models import Role
    from accounts.services import membership_set, workspace_create

    slug = f"bench-{label}-{datetime.now(UTC):%Y%m%d%H%M%S}-{random.randrange(16**4):04x}"
    workspace = workspace_create(name=slug, slug=slug, currency="EUR", time_zone="Europe/Paris")
    if user is not None:
        membership_set(workspace=workspace, user=user, role=Role.MARKETER)
    return workspace


STITCH_EVERY = 10  # one item in ten joins two profiles


def api_bodies(events: list[tuple], prefix: str, identities: bool = False) -> list[tuple[int, bytes]]:
    """Event bodies (for the events kind: the items are built from the tuples); with `identities`,
    each item also names its person's cookie, and one in ten a cookie of another profile."""
    bodies = []
    for start in range(0, len(events), BATCH):
        items = []
        for n, (external_id, kind, channel, at, properties, key) in enumerate(events[start : start + BATCH], start):
            item = {
                "idempotency_key": f"{prefix}-{key}",
                "external_id": external_id,
                "type": kind,
                "channel": channel,
                "occurred_at": at.isoformat(),
                "properties": properties,
            }
            if identities:
                item["identities"] = [{"type": "cookie", "value": f"ck-{external_id}"}]
                if n % STITCH_EVERY == 0:
                    item["identities"].append({"type": "cookie", "value": f"other-{n}"})
            items.append(item)
        bodies.append((len(items), json.dumps({"items": items}, separators=(",", ":")).encode()))
    return bodies


def anonymous_bodies(n: int, prefix: str) -> list[tuple[int, bytes]]:
    """The anonymous browsing the stitching passes join: one event for each other cookie."""
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    items = [
        {
            "idempotency_key": f"{prefix}-anon-{i}",
            "identities": [{"type": "cookie", "value": f"other-{i}"}],
            "type": "page_view",
            "channel": "web",
            "occurred_at": at.isoformat(),
        }
        for i in range(0, n, STITCH_EVERY)
    ]
    return [
        (len(items[s : s + BATCH]), json.dumps({"items": items[s : s + BATCH]}, separators=(",", ":")).encode())
        for s in range(0, len(items), BATCH)
    ]


def item_bodies(items: list[dict], prefix: str) -> list[tuple[int, bytes]]:
    """Bodies of order or profile items, each key prefixed for its pass."""
    bodies = []
    for start in range(0, len(items), BATCH):
        chunk = [
            {**item, "idempotency_key": f"{prefix}-{item['idempotency_key']}"} for item in items[start : start + BATCH]
        ]
        bodies.append((len(chunk), json.dumps({"items": chunk}, separators=(",", ":")).encode()))
    return bodies


def api_pass(
    base: str, slug: str, token: str, bodies: list[tuple[int, bytes]], clients: int, kind: str = "events"
) -> dict:
    """POST every body, `clients` at a time; returns counts and timings."""
    import requests

    url = f"{base}/api/workspaces/{slug}/ingest/{kind}/"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    pending = list(reversed(bodies))
    lock = threading.Lock()
    latencies: list[float] = []
    totals = {"created": 0, "duplicates": 0, "rejected": 0}
    failures: list[str] = []

    def client() -> None:
        with requests.Session() as session:
            while True:
                with lock:
                    if not pending or failures:
                        return
                    count, body = pending.pop()
                started = time.perf_counter()
                response = session.post(url, data=body, headers=headers, timeout=600)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    with lock:
                        failures.append(f"HTTP {response.status_code}: {response.text[:500]}")
                    return
                report = response.json()
                with lock:
                    latencies.append(elapsed)
                    totals["created"] += report["created"]
                    totals["duplicates"] += report["duplicates"]
                    totals["rejected"] += len(report["rejected"])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if failures:
        raise RuntimeError(failures[0])
    return {"wall": wall, "latencies": latencies, **totals}


def _merges(workspace) -> int:
    from customers.models import ProfileMerge

    return ProfileMerge.objects.filter(workspace=workspace).count()


def bare_profiles(workspace, external_ids: set[str]) -> dict[str, int]:
    """The profiles a COPY pass refers to, created beforehand (untimed): external id -> id."""
    from customers.models import Profile

    Profile.objects.bulk_create(
        [Profile(workspace=workspace, external_id=external_id) for external_id in sorted(external_ids)],
        batch_size=5_000,
    )
    return dict(Profile.objects.filter(workspace=workspace).values_list("external_id", "id"))


def copy_pass(database_url: str, workspace, events: list[tuple]) -> dict:
    """COPY the same rows into customers_event (profiles created first, untimed)."""
    from core.personal_data import key_digest
    from customers.models import Event

    ids = bare_profiles(workspace, {e[0] for e in events})
    received = datetime.now(UTC)
    rows = [
        (
            workspace.pk,
            ids[external_id],
            kind,
            channel,
            at,
            received,
            json.dumps(properties, separators=(",", ":")),
            key_digest(f"copy-{key}"),  # what the API stores of a key
        )
        for external_id, kind, channel, at, properties, key in events
    ]
    columns = "workspace_id, profile_id, type, channel, occurred_at, received_at, properties, idempotency_key"
    return _copy(database_url, Event._meta.db_table, columns, rows, workspace)


def copy_orders(database_url: str, workspace, orders: list[dict]) -> dict:
    """COPY the same orders into customers_order (profiles created first, untimed)."""
    from customers.models import Order

    ids = bare_profiles(workspace, {o["external_id"] for o in orders})
    now = datetime.now(UTC)
    rows = [
        (
            workspace.pk,
            ids[o["external_id"]],
            o["order_id"],
            o["amount"],
            "EUR",
            o["ordered_at"],
            o["channel"],
            "completed",
            json.dumps(o["items"], separators=(",", ":")),
            now,
            now,
        )
        for o in orders
    ]
    table = Order._meta.db_table
    columns = "workspace_id, profile_id, order_id, amount, currency, ordered_at, channel, status, items, created_at, updated_at"
    return _copy(database_url, table, columns, rows, workspace)


def copy_profiles(database_url: str, workspace, profiles: list[dict]) -> dict:
    """COPY the same profiles into customers_profile (the columns the API fills, defaults for the rest)."""
    from customers.models import Profile

    now = datetime.now(UTC)
    rows = [
        (
            workspace.pk,
            p["external_id"],
            "prospect",
            p["first_name"],
            p["last_name"],
            p["email"],
            p["phone"],
            p["birth_date"],
            p["gender"],
            "",
            p["city"],
            "",
            p["region"],
            p["country"],
            "{}",
            now,
            now,
        )
        for p in profiles
    ]
    columns = (
        "workspace_id, external_id, lifecycle_stage, first_name, last_name, email, phone, birth_date, gender, "
        "socio_professional_category, city, postal_code, region, country, attributes, created_at, updated_at"
    )
    return _copy(database_url, Profile._meta.db_table, columns, rows, workspace)


def _copy(database_url: str, table: str, columns: str, rows: list[tuple], workspace) -> dict:
    import psycopg

    with psycopg.connect(database_url) as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        wall = time.perf_counter() - started
        landed = conn.execute(f"SELECT count(*) FROM {table} WHERE workspace_id = %s", [workspace.pk]).fetchone()[0]
    return {"wall": wall, "rows": landed}


# Issue 32's goals for one client: the API's rate as a share of COPY's, in the same run.
ONE_CLIENT_GOALS = {"events": 0.4, "orders": 0.4, "profiles": 0.3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=["events", "orders", "profiles"], default="events")
    parser.add_argument("--events", type=int, default=200_000, help="Items to ingest (default 200,000).")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="Also run a pass with this many concurrent clients (default 1: none).",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2).")
    parser.add_argument("--timeout", type=int, default=120, help="gunicorn worker timeout in seconds (default 120).")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="Keep the bench workspaces and their rows.")
    parser.add_argument(
        "--stitching", action="store_true", help="Events: measure identity stitching (see the module's doc)."
    )
    args = parser.parse_args()
    if args.stitching and args.kind != "events":
        parser.error("--stitching measures events.")
    if args.events < 1 or args.concurrency < 1:
        parser.error("--events and --concurrency must be positive.")
    check_loopback(args.redis_url)

    env = postgres_env(args.database_url, args.redis_url)
    ensure_database(args.database_url)
    migrate(env)
    django_setup(env)

    from django.db import connection

    from accounts.services import token_get_or_create
    from demo.seed import demo_reset

    kind = args.kind
    table = {"events": "customers_event", "orders": "customers_order", "profiles": "customers_profile"}[kind]
    profiles = max(1, args.events // 10) if kind != "profiles" else args.events
    print(f"Generating {args.events:,} {kind} over {profiles:,} external ids ...", flush=True)
    if kind == "events":
        events = make_events(args.events, profiles, args.seed)
    else:
        items = (
            make_orders(args.events, profiles, args.seed) if kind == "orders" else make_profiles(args.events, args.seed)
        )
    user = bench_user()
    token = token_get_or_create(user=user).key
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        before = cursor.fetchone()[0]
    print(f"{table} holds {before:,} rows before the run.", flush=True)

    workspaces = []
    results = []
    logdir = Path(tempfile.mkdtemp(prefix="cible-bench-"))
    log = logdir / "gunicorn.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_gunicorn(env, port, args.workers, args.timeout, log)
    try:
        wait_ready(base, proc, log)
        passes: list = [1] if args.concurrency == 1 else [1, args.concurrency]
        if args.stitching:
            passes = ["plain", "ignored", "stitching"]
        for clients in passes:
            workspace = new_workspace(f"api{clients}", user)
            workspaces.append(workspace)
            if args.stitching and clients != "plain":
                from customers.models import MatchRule

                if clients == "ignored":
                    MatchRule.objects.create(
                        workspace=workspace, type="cookie", strength="ignored", priority=10, max_profiles=3
                    )
                seeded = api_pass(base, workspace.slug, token, anonymous_bodies(args.events, str(clients)), 1, kind)
                print(f"Seeded {seeded['created']:,} anonymous profiles to join (untimed).", flush=True)
            if kind == "events":
                bodies = api_bodies(events, f"api{clients}", identities=args.stitching and clients != "plain")
            else:
                bodies = item_bodies(items, f"api{clients}")
            label = clients if isinstance(clients, str) else f"{clients} client(s)"
            print(f"POSTing {len(bodies)} batches of up to {BATCH:,} {kind}, {label} ...", flush=True)
            started_merges = _merges(workspace)
            result = api_pass(base, workspace.slug, token, bodies, 1 if isinstance(clients, str) else clients, kind)
            result["merged"] = _merges(workspace) - started_merges
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT count(*) FROM {table} WHERE workspace_id = %s", [workspace.pk])
                landed = cursor.fetchone()[0]
                cursor.execute("SELECT count(*) FROM customers_profile WHERE workspace_id = %s", [workspace.pk])
                made = cursor.fetchone()[0]
            seeded_events = (
                args.events // STITCH_EVERY + (args.events % STITCH_EVERY > 0)
                if clients in ("ignored", "stitching")
                else 0
            )
            landed -= seeded_events
            if landed != args.events or result["rejected"] or result["created"] != args.events:
                raise RuntimeError(
                    f"{landed:,} {kind} landed, {result['created']:,} reported created, {result['rejected']} rejected: "
                    f"expected {args.events:,}"
                )
            results.append((clients, result, made))
    finally:
        stop_gunicorn(proc)

    try:
        workspace = new_workspace("copy")
        workspaces.append(workspace)
        print("COPYing the same rows ...", flush=True)
        if kind == "events":
            copied = copy_pass(args.database_url, workspace, events)
        elif kind == "orders":
            copied = copy_orders(args.database_url, workspace, items)
        else:
            copied = copy_profiles(args.database_url, workspace, items)
        if copied["rows"] != args.events:
            raise RuntimeError(f"{copied['rows']:,} rows copied, expected {args.events:,}")
    finally:
        if not args.keep:
            for workspace in workspaces:
                demo_reset(workspace=workspace)
                workspace.delete()

    copy_rate = args.events / copied["wall"]
    print()
    print(
        f"{kind.capitalize()}: {args.events:,} over {profiles:,} external ids, batches of {BATCH:,}; "
        f"gunicorn -w {args.workers}."
    )
    for clients, result, made in results:
        rate = args.events / result["wall"]
        lat = result["latencies"]
        label = clients if isinstance(clients, str) else f"{clients} client(s)"
        print(
            f"API,  {label}: {args.events:,} {kind} in {result['wall']:.2f} s = {rate:,.0f} {kind}/s "
            f"(request median {statistics.median(lat):.2f} s, max {max(lat):.2f} s; {made:,} profiles in the end, "
            f"{result['merged']:,} merged)"
        )
    if args.stitching:
        walls = {clients: result["wall"] for clients, result, _ in results}
        print(
            f"Stitching / the same batch without stitching (ignored): {walls['stitching'] / walls['ignored']:.2f}x "
            f"(target 1.5x); stitching / external ids only: {walls['stitching'] / walls['plain']:.2f}x"
        )
    print(f"COPY:             {args.events:,} rows   in {copied['wall']:.2f} s = {copy_rate:,.0f} rows/s")
    for clients, result, _ in results:
        rate = args.events / result["wall"]
        goal = f"; goal with 1 client >= {ONE_CLIENT_GOALS[kind]:.1f}" if clients == 1 else ""
        print(f"Ratio API/COPY, {clients}: {rate / copy_rate:.3f} (COPY is {copy_rate / rate:.1f}x faster){goal}")
    print(f"gunicorn log: {log}")


if __name__ == "__main__":
    main()
