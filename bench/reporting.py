"""Reporting benchmark: the roll-up over 10M touches and 1M delivery rows, then after 1% new data.

    . .venv/bin/activate
    python -m bench.reporting --seed          # build the data set (about 10 minutes), then measure
    python -m bench.reporting                 # measure again on the data set already built

The data set, in its own workspace `bench-reporting` of the benchmark database:
- 200,000 profiles; 400 active campaigns of 4 targets each on e-mail and display, over 60 days;
- 10,000,000 touches sent (deliveries) spread over the 60 days;
- 1,000,000 delivery figures (campaign x target x channel x day x 5 publishers, plus the rest),
  each with its spend entry in the ledger (1,000,000 ledger rows);
- 500,000 completed orders and 200,000 clicks on deliveries, for the attribution.

Measured: a full roll-up (attribution of every order, then the daily roll-up of the four sources),
then 1% new data arriving now (100,000 touches, 10,000 figures with their spend, 5,000 orders,
2,000 clicks) and an incremental roll-up, which only reads what changed since the last run.
Before the figures are printed, the incremental result is compared, row for row, with a full
roll-up of the same data, and today's clicks must include the ones each increment added.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import DEFAULT_DATABASE_URL, check_loopback, django_setup, ensure_database, migrate, postgres_env

SLUG = "bench-reporting"
PROFILES = 200_000
CAMPAIGNS = 400
TARGETS = 4
DAYS = 60
TOUCHES = 10_000_000
FIGURES = 1_000_000
ORDERS = 500_000
CLICKS = 200_000


def run_sql(sql: str, params: list | None = None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.rowcount


def seed() -> None:
    from datetime import timedelta
    from decimal import Decimal

    from django.db import connection
    from django.utils import timezone

    from accounts.models import Workspace
    from accounts.services import workspace_create
    from campaigns.models import Campaign, Target
    from customers.models import Profile
    from segments.models import Segment

    Workspace.objects.filter(slug=SLUG).delete()
    workspace = workspace_create(name="Bench reporting", slug=SLUG, currency="EUR", time_zone="Europe/Paris")
    ws = workspace.pk
    started = time.perf_counter()
    Profile.objects.bulk_create(
        (Profile(workspace=workspace, external_id=f"R{i}") for i in range(PROFILES)), batch_size=10_000
    )
    first_profile, last_profile = (
        Profile.objects.filter(workspace=workspace).order_by("pk").values_list("pk", flat=True)[:: PROFILES - 1]
    )
    segments = [
        Segment.objects.create(workspace=workspace, name=f"segment {i}", definition={"all": []}) for i in range(TARGETS)
    ]
    now = timezone.now()
    start = now - timedelta(days=DAYS - 1)
    Campaign.objects.bulk_create(
        Campaign(
            workspace=workspace,
            name=f"campaign {i}",
            channels=["email", "display"],
            starts_at=start - timedelta(hours=1),
            ends_at=now + timedelta(days=30),
            currency="EUR",
            status=Campaign.Status.ACTIVE,
            spent=Decimal(0),
        )
        for i in range(CAMPAIGNS)
    )
    campaigns = list(Campaign.objects.filter(workspace=workspace).order_by("pk").values_list("pk", flat=True))
    Target.objects.bulk_create(
        Target(workspace=workspace, campaign_id=c, segment=segments[t], variant=chr(65 + t))
        for c in campaigns
        for t in range(TARGETS)
    )
    first_campaign = campaigns[0]
    first_target = Target.objects.filter(campaign_id=first_campaign).order_by("pk").values_list("pk", flat=True)[0]
    print(f"profiles, campaigns and targets in {time.perf_counter() - started:.1f} s", flush=True)
    # targets were created campaign by campaign: target of (campaign i, slot t) = first_target + 4 i + t
    params = {
        "ws": ws,
        "c0": first_campaign,
        "t0": first_target,
        "p0": first_profile,
        "np": last_profile - first_profile + 1,
        "start": start,
        "days": DAYS,
    }
    step = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        # A bulk load: the secondary indexes are built once after it, and the generated rows' foreign
        # keys (consistent by construction) are not checked one by one at commit.
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'campaigns_touch' "
            "AND indexname NOT LIKE '%%pkey'"
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute("ALTER TABLE campaigns_touch DISABLE TRIGGER ALL")
        cursor.execute(
            """
            INSERT INTO campaigns_touch (workspace_id, campaign_id, target_id, profile_id, channel, variant, status,
                                         created_at, sent_at, sent_day)
            SELECT %(ws)s, %(c0)s + c, %(t0)s + 4 * c + t, %(p0)s + (random() * (%(np)s - 1))::int,
                   CASE WHEN t %% 2 = 0 THEN 'email' ELSE 'display' END, chr(65 + t), 'sent', at, at,
                   (at AT TIME ZONE 'Europe/Paris')::date
            FROM (SELECT (random() * 399)::int AS c, (random() * 3)::int AS t,
                         %(start)s::timestamptz + random() * interval '59 days' AS at
                  FROM generate_series(1, %(n)s)) x
            """,
            {**params, "n": TOUCHES},
        )
        cursor.execute("ALTER TABLE campaigns_touch ENABLE TRIGGER ALL")
        for _, definition in indexes:
            cursor.execute(definition)
        print(f"{TOUCHES:,} touches, indexes included, in {time.perf_counter() - step:.1f} s", flush=True)
        step = time.perf_counter()
        cursor.execute(
            """
            INSERT INTO reporting_deliveryfigure (workspace_id, campaign_id, target_id, channel, day, source,
                impressions, clicks, conversions, spend, revenue, booked_spend, revision, received_at, updated_at)
            SELECT %(ws)s, %(c0)s + i %% 400, %(t0)s + 4 * (i %% 400) + (i / 400) %% 4,
                   CASE WHEN (i / 1600) %% 2 = 0 THEN 'email' ELSE 'display' END,
                   (%(start)s::timestamptz AT TIME ZONE 'Europe/Paris')::date + (i / 3200) %% 60,
                   'pub' || (i / 192000), 1000 + i %% 500, 10 + i %% 40, i %% 5, 12.50, 30.00, 12.50, 1,
                   %(start)s, %(start)s
            FROM generate_series(0, %(n)s - 1) i
            """,
            {**params, "n": FIGURES},
        )
        cursor.execute(
            """
            INSERT INTO campaigns_ledgerentry (workspace_id, campaign_id, kind, amount, currency, target_id, channel,
                day, occurred_at, idempotency_key, source, reason, recorded_at)
            SELECT workspace_id, campaign_id, 'spend', spend, 'EUR', target_id, channel, day, received_at,
                   'delivery-' || id || '-r1', 'delivery:' || source, '', received_at
            FROM reporting_deliveryfigure WHERE workspace_id = %(ws)s
            """,
            params,
        )
        cursor.execute(
            """
            UPDATE campaigns_campaign c SET spent = s.total
            FROM (SELECT campaign_id, sum(amount) AS total FROM campaigns_ledgerentry
                  WHERE workspace_id = %(ws)s GROUP BY campaign_id) s
            WHERE c.id = s.campaign_id
            """,
            params,
        )
        print(f"{FIGURES:,} figures and their ledger entries in {time.perf_counter() - step:.1f} s", flush=True)
        step = time.perf_counter()
        cursor.execute(
            """
            INSERT INTO customers_order (workspace_id, profile_id, order_id, amount, currency, ordered_at, channel,
                                         status, items, created_at, updated_at)
            SELECT %(ws)s, %(p0)s + (random() * (%(np)s - 1))::int, 'RO' || i, 20 + (random() * 180)::int, 'EUR',
                   %(start)s::timestamptz + random() * interval '59 days', 'web', 'completed', '[]', %(start)s,
                   %(start)s
            FROM generate_series(1, %(n)s) i
            """,
            {**params, "n": ORDERS},
        )
        clicks_insert(cursor, ws=ws, n=CLICKS, received=params["start"], delay="1 hour")
        print(f"{ORDERS:,} orders and {CLICKS:,} clicks in {time.perf_counter() - step:.1f} s", flush=True)


def new_data(workspace) -> None:
    """1% more, arriving now: touches sent today, figures and their spend for today, orders and clicks."""
    from django.db import connection
    from django.utils import timezone

    from campaigns.models import Campaign, Target

    ws = workspace.pk
    first_campaign = Campaign.objects.filter(workspace=workspace).order_by("pk").values_list("pk", flat=True)[0]
    first_target = Target.objects.filter(campaign_id=first_campaign).order_by("pk").values_list("pk", flat=True)[0]
    profiles = workspace_profiles(workspace)
    now = timezone.now()
    params = {
        "ws": ws,
        "c0": first_campaign,
        "t0": first_target,
        "p0": profiles[0],
        "np": profiles[1] - profiles[0] + 1,
        "now": now,
        "tag": int(now.timestamp()),
    }
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO campaigns_touch (workspace_id, campaign_id, target_id, profile_id, channel, variant, status,
                                         created_at, sent_at, sent_day)
            SELECT %(ws)s, %(c0)s + c, %(t0)s + 4 * c + t, %(p0)s + (random() * (%(np)s - 1))::int,
                   CASE WHEN t %% 2 = 0 THEN 'email' ELSE 'display' END, chr(65 + t), 'sent', %(now)s, %(now)s,
                   (%(now)s::timestamptz AT TIME ZONE 'Europe/Paris')::date
            FROM (SELECT (random() * 399)::int AS c, (random() * 3)::int AS t FROM generate_series(1, %(n)s)) x
            """,
            {**params, "n": TOUCHES // 100},
        )
        cursor.execute(
            """
            WITH fresh AS (
                INSERT INTO reporting_deliveryfigure (workspace_id, campaign_id, target_id, channel, day, source,
                    impressions, clicks, conversions, spend, revenue, booked_spend, revision, received_at, updated_at)
                SELECT %(ws)s, %(c0)s + i %% 400, %(t0)s + 4 * (i %% 400) + (i / 400) %% 4,
                       CASE WHEN (i / 1600) %% 2 = 0 THEN 'email' ELSE 'display' END,
                       (%(now)s::timestamptz AT TIME ZONE 'Europe/Paris')::date, 'new' || %(tag)s || '-' || (i / 3200),
                       1000, 20, 1, 12.50, 30.00, 12.50, 1, %(now)s, %(now)s
                FROM generate_series(0, %(n)s - 1) i
                RETURNING *
            )
            INSERT INTO campaigns_ledgerentry (workspace_id, campaign_id, kind, amount, currency, target_id, channel,
                day, occurred_at, idempotency_key, source, reason, recorded_at)
            SELECT workspace_id, campaign_id, 'spend', spend, 'EUR', target_id, channel, day, received_at,
                   'delivery-' || id || '-r1', 'delivery:' || source, '', received_at FROM fresh
            """,
            {**params, "n": FIGURES // 100},
        )
        cursor.execute(
            """
            INSERT INTO customers_order (workspace_id, profile_id, order_id, amount, currency, ordered_at, channel,
                                         status, items, created_at, updated_at)
            SELECT %(ws)s, %(p0)s + (random() * (%(np)s - 1))::int, 'NO' || %(tag)s || '-' || i, 50, 'EUR', %(now)s,
                   'web', 'completed', '[]', %(now)s, %(now)s
            FROM generate_series(1, %(n)s) i
            """,
            {**params, "n": ORDERS // 100},
        )
        written = clicks_insert(cursor, ws=ws, n=CLICKS // 100, received=now, delay="1 minute", sent_at=now)
        if written != CLICKS // 100:
            sys.exit(f"The increment wrote {written} clicks, not {CLICKS // 100}.")


def clicks_insert(cursor, *, ws: int, n: int, received, delay: str, sent_at=None) -> int:
    """Click events on `n` random touches (those sent at `sent_at` when given), `delay` after the send,
    with their reporting clicks; returns how many clicks were written."""
    cursor.execute(
        f"""
        WITH picked AS (
            SELECT id, profile_id, sent_at FROM campaigns_touch
            WHERE workspace_id = %(ws)s {"AND created_at = %(sent_at)s" if sent_at else ""}
            ORDER BY random() LIMIT %(n)s
        ), events AS (
            INSERT INTO customers_event (workspace_id, profile_id, type, channel, occurred_at, received_at,
                                         properties, idempotency_key)
            SELECT %(ws)s, profile_id, 'email_click', 'email', sent_at + %(delay)s::interval, %(received)s,
                   jsonb_build_object('touch_id', id), 'click-' || id
            FROM picked
            RETURNING id, profile_id, occurred_at, (properties ->> 'touch_id')::bigint AS touch_id
        )
        INSERT INTO reporting_click (workspace_id, touch_id, profile_id, event_id, occurred_at)
        SELECT %(ws)s, touch_id, profile_id, id, occurred_at FROM events
        """,
        {"ws": ws, "n": n, "received": received, "delay": delay, "sent_at": sent_at},
    )
    return cursor.rowcount


def rollup_rows(workspace) -> list[tuple]:
    """Every figure of the workspace's roll-up, in a stable order, for comparing two runs."""
    from reporting.models import DailyRollup

    fields = [
        "campaign_id", "target_id", "channel", "day", "impressions", "clicks", "spend", "reported_conversions",
        "reported_revenue", "sends", "conversions", "revenue",
    ]  # fmt: skip
    return list(DailyRollup.objects.filter(workspace=workspace).order_by(*fields[:4]).values_list(*fields))


def workspace_profiles(workspace) -> tuple[int, int]:
    from django.db.models import Max, Min

    from customers.models import Profile

    bounds = Profile.objects.filter(workspace=workspace).aggregate(first=Min("pk"), last=Max("pk"))
    return bounds["first"], bounds["last"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--seed", action="store_true", help="build the data set first")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    check_loopback(args.database_url)
    env = postgres_env(args.database_url)
    ensure_database(args.database_url)
    migrate(env)
    django_setup(env)

    import zoneinfo

    from django.db import transaction
    from django.utils import timezone

    from accounts.models import Workspace
    from reporting.models import DailyRollup
    from reporting.services import rollup_run

    if args.seed or not Workspace.objects.filter(slug=SLUG).exists():
        with transaction.atomic():
            seed()
        step = time.perf_counter()
        run_sql("VACUUM (ANALYZE)")
        print(f"VACUUM (ANALYZE) in {time.perf_counter() - step:.1f} s", flush=True)
    workspace = Workspace.objects.get(slug=SLUG)
    tz = zoneinfo.ZoneInfo(workspace.time_zone)
    started = time.perf_counter()
    stats = rollup_run(workspace=workspace, full=True, reattribute=True)
    print(f"full roll-up, every order attributed again: {time.perf_counter() - started:.2f} s ({stats})", flush=True)
    fulls = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        stats = rollup_run(workspace=workspace, full=True)
        fulls.append(time.perf_counter() - started)
        print(f"full roll-up: {fulls[-1]:.2f} s ({stats})", flush=True)
    rows = DailyRollup.objects.filter(workspace=workspace).count()
    increments = []
    for _ in range(args.repeat):
        with transaction.atomic():
            new_data(workspace)
        started = time.perf_counter()
        stats = rollup_run(workspace=workspace)
        increments.append(time.perf_counter() - started)
        print(f"incremental roll-up after 1% new data: {increments[-1]:.2f} s ({stats})", flush=True)
    # The incremental result must be the full one: compare every figure with a full roll-up (not timed).
    incremental = rollup_rows(workspace)
    rollup_run(workspace=workspace, full=True)
    if incremental != rollup_rows(workspace):
        sys.exit("The incremental roll-up differs from a full roll-up of the same data.")
    clicks_today = sum(row[5] for row in incremental if row[3] == timezone.localdate(timezone=tz))
    if clicks_today < args.repeat * CLICKS // 100:
        sys.exit(f"Today's roll-up counts {clicks_today} clicks, fewer than the {args.repeat * CLICKS // 100} added.")
    print(f"\nincremental result equal to a full roll-up, row for row; {clicks_today:,} clicks counted today")
    print(f"\nroll-up rows: {rows:,}")
    print(f"full: best {min(fulls):.2f} s, median {sorted(fulls)[len(fulls) // 2]:.2f} s")
    print(f"incremental (1%): best {min(increments):.2f} s, median {sorted(increments)[len(increments) // 2]:.2f} s")
    print(f"ratio incremental / full: {min(increments) / min(fulls):.3f}")


if __name__ == "__main__":
    main()
