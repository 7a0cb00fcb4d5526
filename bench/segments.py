"""A compound segment on the 1M-profile demo base: Cible's compiled query vs the bare SQL count.

    . .venv/bin/activate
    python manage.py seed_demo --workspace bench-1m --reset --profiles 1000000   # once, with the bench env
    python -m bench.segments                   # or: --seed 1000000 to seed when the workspace is missing

The segment has the four families the issue names, over 1M profiles, 10M events and 2M orders:
  * demographic: women aged 25 to 49;
  * geographic: living in Ile-de-France or Auvergne-Rhone-Alpes, or within 30 km of Marseille;
  * behavioural: at least 2 product views in the last 30 days;
  * transactional: at least 150 EUR of completed orders in the last 365 days.

Measured, each as the median of --repeat runs after one warm-up run:
  1. bare: a hand-written `SELECT count(*)` of the same predicate (the floor: no ORM, no compiler);
  2. compiled: the rule compiler's query, `segment_queryset(definition, ctx).count()`, compile included;
  3. preview: what the API and the admin editor show (count, base, share and a 5-member sample);
  4. preview of the demographic and geographic criteria alone (no event or order aggregate);
  5. audience: a full computation by `audience_compute` (the members written as a new version, the
     per-channel contactable counts, the diff with the previous version, the switch), as a worker runs it.
The ratio of each to the bare count is printed. Goal of the issue: compiled <= 5 s and <= 1.5x.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta
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
)

MARSEILLE = (43.2965, 5.3698)
DEFINITION = {
    "all": [
        {"field": "gender", "op": "eq", "value": "female"},
        {"field": "age", "op": "between", "value": [25, 49]},
        {
            "any": [
                {"field": "region", "op": "in", "value": ["Ile-de-France", "Auvergne-Rhone-Alpes"]},
                {"geo": {"near": list(MARSEILLE), "km": 30}},
            ]
        },
        {"event": "product_view", "within": "P30D", "count": {"gte": 2}},
        {"orders": {"within": "P365D", "amount_sum": {"gte": 150}}},
    ]
}

# The same predicate, written by hand as one would in psql.
BARE_SQL = """
SELECT count(*) FROM customers_profile p
WHERE p.workspace_id = %(ws)s
  AND p.gender = 'female'
  AND p.birth_date > %(born_after)s AND p.birth_date <= %(born_before)s
  AND (
    p.region IN ('Ile-de-France', 'Auvergne-Rhone-Alpes')
    OR (p.latitude BETWEEN %(lat_lo)s AND %(lat_hi)s AND p.longitude BETWEEN %(lon_lo)s AND %(lon_hi)s
        AND 2 * 6371.0088 * asin(sqrt(power(sin((radians(p.latitude) - radians(%(lat)s)) / 2), 2)
            + cos(radians(%(lat)s)) * cos(radians(p.latitude))
            * power(sin((radians(p.longitude) - radians(%(lon)s)) / 2), 2))) <= 30)
  )
  AND p.id IN (
    SELECT e.profile_id FROM customers_event e
    WHERE e.workspace_id = %(ws)s AND e.type = 'product_view' AND e.occurred_at >= %(since_30d)s
      AND e.occurred_at <= %(now)s
    GROUP BY e.profile_id HAVING count(*) >= 2)
  AND p.id IN (
    SELECT o.profile_id FROM customers_order o
    WHERE o.workspace_id = %(ws)s AND o.status = 'completed' AND o.ordered_at >= %(since_365d)s
      AND o.ordered_at <= %(now)s
    GROUP BY o.profile_id HAVING sum(o.amount) >= 150)
"""


def median_time(function, repeat: int) -> tuple[float, object]:
    function()  # warm-up: caches and plans
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--workspace", default="bench-1m")
    parser.add_argument("--seed", type=int, default=0, help="seed this many profiles when the workspace is missing")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--parallel-workers",
        type=int,
        default=None,
        help="SET max_parallel_workers_per_gather for every timed path (default: the server's setting)",
    )
    args = parser.parse_args()
    check_loopback(args.database_url)
    ensure_database(args.database_url)
    env = postgres_env(args.database_url, DEFAULT_REDIS_URL)
    migrate(env)
    os.environ.update({k: v for k, v in env.items() if k in ("DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY")})
    os.environ["DJANGO_ALLOWED_HOSTS"] = env["DJANGO_ALLOWED_HOSTS"]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from accounts.models import Workspace

    if not Workspace.objects.filter(slug=args.workspace).exists():
        if not args.seed:
            sys.exit(f"No workspace {args.workspace!r}: seed it first, or pass --seed 1000000.")
        command = [
            sys.executable,
            "manage.py",
            "seed_demo",
            "--workspace",
            args.workspace,
            "--profiles",
            str(args.seed),
        ]
        subprocess.run(command, cwd=PROJECT, env=env, check=True)
    if args.parallel_workers is not None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('max_parallel_workers_per_gather', %s, false)", [str(args.parallel_workers)]
            )
    run(Workspace.objects.get(slug=args.workspace), args.repeat)


def run(workspace, repeat: int) -> None:
    import math

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")
        print(f"max_parallel_workers_per_gather = {cursor.fetchone()[0]}")

    from audiences.models import AudienceRun
    from core.time import years_ago
    from customers.models import Event, Order, Profile
    from segments.compiler import EARTH_RADIUS_KM, segment_queryset
    from segments.models import Segment
    from segments.rules import validate_definition
    from segments.selectors import compile_context, definition_preview
    from segments.services import segment_create, segment_delete

    validate_definition(DEFINITION, attribute_types={})
    sizes = {
        "profiles": Profile.objects.filter(workspace=workspace).count(),
        "events": Event.objects.filter(workspace=workspace).count(),
        "orders": Order.objects.filter(workspace=workspace).count(),
    }
    print("Workspace {}: {profiles:,} profiles, {events:,} events, {orders:,} orders".format(workspace.slug, **sizes))

    ctx = compile_context(workspace=workspace)
    today = ctx.now.date()
    lat, lon = MARSEILLE
    dlat = math.degrees(30 / EARTH_RADIUS_KM)
    dlon = math.degrees(30 / (EARTH_RADIUS_KM * math.cos(math.radians(lat))))
    params = {
        "ws": workspace.pk,
        "born_after": years_ago(today, 50),
        "born_before": years_ago(today, 25),
        "lat": lat,
        "lon": lon,
        "lat_lo": lat - dlat,
        "lat_hi": lat + dlat,
        "lon_lo": lon - dlon,
        "lon_hi": lon + dlon,
        "now": ctx.now,
        "since_30d": ctx.now - timedelta(days=30),
        "since_365d": ctx.now - timedelta(days=365),
    }

    def bare() -> int:
        with connection.cursor() as cursor:
            cursor.execute(BARE_SQL, params)
            return cursor.fetchone()[0]

    def compiled() -> int:
        return segment_queryset(DEFINITION, compile_context(workspace=workspace)).count()

    def preview() -> dict:
        return definition_preview(workspace=workspace, definition=DEFINITION, sample=5)

    simple = {"all": DEFINITION["all"][:3]}  # demographic + geographic only

    def simple_preview() -> dict:
        return definition_preview(workspace=workspace, definition=simple, sample=5)

    simple_s, simple_shown = median_time(simple_preview, repeat)
    bare_s, bare_count = median_time(bare, repeat)
    compiled_s, compiled_count = median_time(compiled, repeat)
    preview_s, shown = median_time(preview, repeat)
    if not bare_count == compiled_count == shown["count"]:
        sys.exit(f"Counts differ: bare {bare_count}, compiled {compiled_count}, preview {shown['count']}")

    name = "bench compound segment"
    Segment.objects.filter(workspace=workspace, name=name).delete()
    segment = segment_create(workspace=workspace, name=name, definition=DEFINITION)
    from audiences.services import audience_compute

    runs = []
    try:
        for _ in range(repeat + 1):  # the first computation writes everything as "added"; then steady state
            started = time.perf_counter()
            run = audience_compute(segment_id=segment.pk, trigger="manual")
            runs.append(time.perf_counter() - started)
            if run is None or run.status != AudienceRun.Status.SUCCEEDED or run.size != bare_count:
                sys.exit(f"Audience computation failed: {run and (run.status, run.size, run.error)}")
    finally:
        segment_delete(segment=segment)
    audience_s = statistics.median(runs[1:])

    print(f"Segment size: {bare_count:,} of {sizes['profiles']:,} profiles ({bare_count / sizes['profiles']:.2%})")
    print(f"{'Path':<58}{'Median':>10}{'Ratio':>8}")
    rows = [
        ("bare SELECT count(*), hand-written SQL", bare_s),
        ("compiled segment query, count (compile included)", compiled_s),
        ("preview: count + base + share + 5-member sample", preview_s),
        (f"preview of the demographic + geographic part ({simple_shown['count']:,})", simple_s),
        ("audience computation (first run)", runs[0]),
        ("audience computation (steady state, median)", audience_s),
    ]
    for label, seconds in rows:
        print(f"{label:<58}{seconds:>9.3f}s{seconds / bare_s:>7.2f}x")
    verdict = "met" if compiled_s <= 5 and compiled_s <= 1.5 * bare_s else "NOT met"
    print(f"Goal (compiled <= 5 s and <= 1.5x the bare count): {verdict}")


if __name__ == "__main__":
    main()
