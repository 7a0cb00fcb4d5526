"""Segments on the 1M-profile demo base: Cible's compiled queries vs hand-written SQL.

    . .venv/bin/activate
    python manage.py seed_demo --workspace bench-1m --reset --profiles 1000000   # once, with the bench env
    python -m bench.segments                   # or: --seed 1000000 to seed when the workspace is missing
    python -m bench.segments --only broad      # the broad segments alone (--only compound: the compound one)

Everything runs under PostgreSQL's settings as they are (the default work_mem of 4 MB unless the
server was configured otherwise; the value is printed).

Broad segments (issue "Audiences that finish at any size"): four segments that select about 10%,
50%, 80% and 90% of the base, each timed for its preview (count, base, share, sample: the API's
answer) and its audience computation, against a hand-written SQL count of the same people in the
same run, and the computation also against a hand-written INSERT ... SELECT of those people:
  * recent: viewed a page after the day 4 days ago (about 10%);
  * at most one order: `orders count lte 1` (about 50%), a negated aggregate;
  * readers: viewed a page after the day a year ago, with 10,000 manual exclusions and 1,000 manual
    inclusions (about 80%): the segment that never finished before;
  * not recent: not in the segment "recent", with 10,000 manual exclusions (about 90%).
Each count is checked against the hand-written one before any time is printed. Goal: each
within 2x of the hand-written count.

The compound segment:

The segment has the four families the issue names, over 1M profiles, 10M events and 2M orders:
  * demographic: women aged 25 to 49;
  * geographic: living in Ile-de-France or Auvergne-Rhone-Alpes, or within 30 km of Marseille;
  * behavioural: at least 2 product views in the last 30 days;
  * transactional: at least 150 EUR of completed orders in the last 365 days.

Measured, each as the median of --repeat runs after one warm-up run:
  1. bare: a hand-written `SELECT count(*)` of the same predicate (the floor: no ORM, no compiler);
  2. compiled: the rule compiler's query, `segment_queryset(definition, ctx).count()`, compile included;
  3. preview: what the API and the admin editor show (count, base, share and a 5-member sample);
     and the estimate the segment builder shows first, from the fixed sample of the base (goal: 300 ms);
  4. preview of the demographic and geographic criteria alone (no event or order aggregate);
  5. audience: a full computation by `audience_compute` (the members written as a new version, the
     per-channel contactable counts, the diff with the previous version, the switch), as a worker runs it.
The ratio of each to the bare count is printed. Goal of the issue: compiled <= 5 s and <= 1.5x.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import DEFAULT_DATABASE_URL, bench_workspace

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
    parser.add_argument("--only", choices=("compound", "broad"), help="run one part only")
    parser.add_argument(
        "--parallel-workers",
        type=int,
        default=None,
        help="SET max_parallel_workers_per_gather for every timed path (default: the server's setting)",
    )
    args = parser.parse_args()
    workspace = bench_workspace(args.database_url, args.workspace, args.seed)
    if args.parallel_workers is not None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('max_parallel_workers_per_gather', %s, false)", [str(args.parallel_workers)]
            )
    if args.only in (None, "compound"):
        run(workspace, args.repeat)
    if args.only in (None, "broad"):
        run_broad(workspace, args.repeat)


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
    from segments.selectors import compile_context, definition_estimate, definition_preview
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

    def estimate() -> dict | None:
        return definition_estimate(workspace=workspace, definition=DEFINITION)

    estimate_s, estimated = median_time(estimate, repeat)
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
        ("estimate from the fixed sample (the builder's first answer)", estimate_s),
        (f"preview of the demographic + geographic part ({simple_shown['count']:,})", simple_s),
        ("audience computation (first run)", runs[0]),
        ("audience computation (steady state, median)", audience_s),
    ]
    for label, seconds in rows:
        print(f"{label:<58}{seconds:>9.3f}s{seconds / bare_s:>7.2f}x")
    if estimated is not None:
        inside = estimated["low"] <= bare_count <= estimated["high"]
        print(
            f"Estimate: {estimated['count']:,} ({estimated['low']:,} to {estimated['high']:,}, "
            f"{estimated['sampled']:,} sampled); the exact count is {'inside' if inside else 'OUTSIDE'} the interval. "
            f"Goal (estimate <= 300 ms): {'met' if estimate_s <= 0.3 else 'NOT met'}"
        )
    verdict = "met" if compiled_s <= 5 and compiled_s <= 1.5 * bare_s else "NOT met"
    print(f"Goal (compiled <= 5 s and <= 1.5x the bare count): {verdict}")


BROAD_EXCLUDED = 10_000
BROAD_INCLUDED = 1_000

# Hand-written, as one would in psql knowing the planner: semi- and anti-joins at the top level,
# a grouped subquery joined once, a UNION for the manual inclusions.
BROAD_SQL = {
    "recent": """
        SELECT {select} FROM customers_profile p
        WHERE p.workspace_id = %(ws)s AND p.erased_at IS NULL
          AND p.id IN (SELECT e.profile_id FROM customers_event e
                       WHERE e.workspace_id = %(ws)s AND e.type = 'page_view'
                         AND e.occurred_at >= %(since_recent)s AND e.occurred_at <= %(now)s)""",
    "at most one order": """
        SELECT {select} FROM customers_profile p
        LEFT JOIN (SELECT o.profile_id, count(*) AS n FROM customers_order o
                   WHERE o.workspace_id = %(ws)s AND o.status = 'completed' AND o.ordered_at <= %(now)s
                   GROUP BY o.profile_id) o ON o.profile_id = p.id
        WHERE p.workspace_id = %(ws)s AND p.erased_at IS NULL AND coalesce(o.n, 0) <= 1""",
    "readers": """
        SELECT {select} FROM customers_profile p
        JOIN (SELECT e.profile_id FROM customers_event e
              WHERE e.workspace_id = %(ws)s AND e.type = 'page_view'
                AND e.occurred_at >= %(since_year)s AND e.occurred_at <= %(now)s
              UNION
              SELECT m.profile_id FROM segments_manualmember m
              WHERE m.segment_id = %(readers)s AND m.action = 'include') s ON s.profile_id = p.id
        WHERE p.workspace_id = %(ws)s AND p.erased_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM segments_manualmember x
                          WHERE x.segment_id = %(readers)s AND x.action = 'exclude' AND x.profile_id = p.id)""",
    "not recent": """
        SELECT {select} FROM customers_profile p
        WHERE p.workspace_id = %(ws)s AND p.erased_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM audiences_audiencemember a
                          WHERE a.audience_id = %(recent_audience)s AND a.version = %(recent_version)s
                            AND a.profile_id = p.id)
          AND NOT EXISTS (SELECT 1 FROM segments_manualmember x
                          WHERE x.segment_id = %(not_recent)s AND x.action = 'exclude' AND x.profile_id = p.id)""",
}


def run_broad(workspace, repeat: int) -> None:
    import zoneinfo
    from datetime import datetime
    from datetime import time as clock

    from django.db import connection
    from django.utils import timezone

    from audiences.models import AudienceRun
    from audiences.services import audience_compute
    from core.time import local_day
    from customers.models import Profile
    from segments.models import ManualMember, Segment
    from segments.selectors import segment_preview
    from segments.services import segment_create, segment_delete

    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        print(f"\nBroad segments (work_mem = {cursor.fetchone()[0]})")
    # Absolute periods (after a day of the workspace's calendar), so that every path counts the same
    # people while the run lasts: a window back from now would slide between the measurements.
    today = local_day(workspace, timezone.now())
    recent_day, year_day = today - timedelta(days=4), today - timedelta(days=365)

    def day_start(day):
        return datetime.combine(day, clock.min, tzinfo=zoneinfo.ZoneInfo(workspace.time_zone))

    base = Profile.objects.filter(workspace=workspace).count()
    names = {
        "recent": "bench broad: recent",
        "at most one order": "bench broad: at most one order",
        "readers": "bench broad: readers",
        "not recent": "bench broad: not recent",
    }
    for name in ("not recent", "readers", "at most one order", "recent"):  # left by an interrupted run
        for leftover in Segment.objects.filter(workspace=workspace, name=names[name]):
            segment_delete(segment=leftover)
    recent = segment_create(
        workspace=workspace, name=names["recent"], definition={"event": "page_view", "after": recent_day.isoformat()}
    )
    segments = {
        "recent": recent,
        "at most one order": segment_create(
            workspace=workspace, name=names["at most one order"], definition={"orders": {"count": {"lte": 1}}}
        ),
        "readers": segment_create(
            workspace=workspace, name=names["readers"], definition={"event": "page_view", "after": year_day.isoformat()}
        ),
        "not recent": segment_create(
            workspace=workspace, name=names["not recent"], definition={"not": {"segment": recent.pk}}
        ),
    }
    # Manual members, spread over the base: every 100th profile excluded, every 997th included.
    ids = list(Profile.objects.filter(workspace=workspace).order_by("pk").values_list("pk", flat=True))
    excluded = ids[::100][:BROAD_EXCLUDED]
    included = [pk for pk in ids[37::997] if pk not in set(excluded)][:BROAD_INCLUDED]
    for name in ("readers", "not recent"):
        ManualMember.objects.bulk_create(
            [
                ManualMember(
                    workspace=workspace, segment=segments[name], profile_id=pk, action=ManualMember.Action.EXCLUDE
                )
                for pk in excluded
            ],
            batch_size=5_000,
        )
    ManualMember.objects.bulk_create(
        [
            ManualMember(
                workspace=workspace, segment=segments["readers"], profile_id=pk, action=ManualMember.Action.INCLUDE
            )
            for pk in included
        ],
        batch_size=5_000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE segments_manualmember")
    try:
        first = audience_compute(segment_id=recent.pk)  # "not recent" reads its audience
        if first is None or first.status != AudienceRun.Status.SUCCEEDED:
            sys.exit(f"Audience computation of 'recent' failed: {first and first.error}")
        now = timezone.now()
        params = {
            "ws": workspace.pk,
            "now": now,
            "since_recent": day_start(recent_day + timedelta(days=1)),
            "since_year": day_start(year_day + timedelta(days=1)),
            "readers": segments["readers"].pk,
            "not_recent": segments["not recent"].pk,
            "recent_audience": recent.audience.pk,
        }
        print(
            f"{'Segment':<20}{'size':>10}{'share':>7}{'hand count':>12}{'preview':>10}{'ratio':>7}"
            f"{'hand insert':>13}{'audience':>10}{'ratio':>7}{'vs insert':>10}"
        )
        met = True
        for name, segment in segments.items():
            # "recent" is computed again above: "not recent" reads its current version.
            recent.audience.refresh_from_db()
            params["recent_version"] = recent.audience.current_version

            def bare(name=name) -> int:
                with connection.cursor() as cursor:
                    cursor.execute(BROAD_SQL[name].format(select="count(*)"), params)
                    return cursor.fetchone()[0]

            def insert(name=name) -> int:
                # The same people written into a scratch table (emptied before each run): the floor of
                # what a computation must write.
                with connection.cursor() as cursor:
                    cursor.execute("CREATE TEMP TABLE IF NOT EXISTS bench_members (profile_id bigint)")
                    cursor.execute("TRUNCATE bench_members")
                    cursor.execute("INSERT INTO bench_members " + BROAD_SQL[name].format(select="p.id"), params)
                    return cursor.rowcount

            def preview(segment=segment) -> dict:
                return segment_preview(segment=segment, sample=10)

            bare_s, bare_count = median_time(bare, repeat)
            insert_s, inserted = median_time(insert, repeat)
            preview_s, shown = median_time(preview, repeat)
            runs = []
            for _ in range(repeat + 1):
                started = time.perf_counter()
                run = audience_compute(segment_id=segment.pk)
                runs.append(time.perf_counter() - started)
                if run is None or run.status != AudienceRun.Status.SUCCEEDED:
                    sys.exit(f"Audience computation of {name!r} failed: {run and (run.status, run.error)}")
            if not bare_count == inserted == shown["count"] == run.size:
                sys.exit(
                    f"{name}: counts differ: hand-written {bare_count}, inserted {inserted}, "
                    f"preview {shown['count']}, audience {run.size}"
                )
            audience_s = statistics.median(runs[1:])
            met &= preview_s <= 2 * bare_s
            print(
                f"{name:<20}{bare_count:>10,}{bare_count / base:>7.1%}{bare_s:>11.2f}s{preview_s:>9.2f}s"
                f"{preview_s / bare_s:>6.2f}x{insert_s:>12.2f}s{audience_s:>9.2f}s{audience_s / bare_s:>6.2f}x"
                f"{audience_s / insert_s:>9.2f}x"
            )
        print(f"Goal (each preview within 2x of the hand-written count): {'met' if met else 'NOT met'}")
    finally:
        for name in ("not recent", "readers", "at most one order", "recent"):
            segment_delete(segment=segments[name])


if __name__ == "__main__":
    main()
