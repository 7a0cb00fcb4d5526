"""Campaign benchmarks on the 1M-profile demo base: activation into deliveries, and spend under concurrency.

    . .venv/bin/activate
    python -m bench.campaigns                       # both parts, on the seeded workspace bench-1m
    python -m bench.campaigns --only spend --writers 1 8 32

Activation: a segment of every profile (1,000,000 members) is computed, then an e-mail campaign on it
is activated with a frequency cap of 3 per 7 days. `campaign_deliveries` writes one touch for each
member contactable by e-mail (the consent in force now), outside the cap, not yet reached: one
INSERT ... SELECT. It is timed next to a bare read of the same audience version (every member id
fetched by the client) and a bare count.

Activation is checked before its time is printed: the touches written must equal an independent,
hand-written SQL count of the members with e-mail consent in force, not erased, not suppressed and
under the cap.

Spend: W writers (processes x threads) each record entries of 0.01 on ONE campaign (the worst
case: they all queue on its row lock), then on one campaign each, with a total budget of 30.00 a
campaign that the writers exhaust within the run. The figures are writes/s (accepted and refused:
a refusal takes the same lock); before they are printed the script checks that the ledger sum
equals the campaigns' spent and the accepted writes, that every cap was reached exactly, that
writes past it were refused, and that no campaign went past it.
"""

import argparse
import os
import statistics
import sys
import threading
import time
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    check_loopback,
    ensure_database,
    migrate,
    postgres_env,
)


def setup_django(env: dict) -> None:
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS")})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def activation(workspace, repeat: int) -> None:
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from audiences.services import audience_compute
    from campaigns.activation import campaign_deliveries
    from campaigns.models import Campaign, FrequencyCap, Touch
    from campaigns.services import campaign_create
    from segments.models import Segment
    from segments.services import segment_create

    name = "bench everyone"
    Campaign.objects.filter(workspace=workspace, name__startswith="bench activation").delete()
    Segment.objects.filter(workspace=workspace, name=name).delete()
    segment = segment_create(
        workspace=workspace, name=name, definition={"field": "country", "op": "is_set", "value": True}
    )
    started = time.perf_counter()
    run = audience_compute(segment_id=segment.pk)
    print(f"Audience of {run.size:,} members computed in {time.perf_counter() - started:.2f} s")
    audience = Segment.objects.get(pk=segment.pk).audience
    cap, _ = FrequencyCap.objects.get_or_create(
        workspace=workspace, channel="email", window=timedelta(days=7), defaults={"max_touches": 3}
    )

    def bare_read() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT profile_id FROM audiences_audiencemember WHERE audience_id = %s AND version = %s",
                [audience.pk, audience.current_version],
            )
            return len(cursor.fetchall())

    def bare_count() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM audiences_audiencemember WHERE audience_id = %s AND version = %s",
                [audience.pk, audience.current_version],
            )
            return cursor.fetchone()[0]

    def expected_deliveries(now) -> int:
        """An independent count of who activation must reach: members whose latest e-mail consent record
        at `now` is a grant, not erased, on no suppression list, under the cap (hand-written SQL)."""
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT count(*) FROM audiences_audiencemember m
                JOIN customers_profile p ON p.id = m.profile_id AND p.erased_at IS NULL
                WHERE m.audience_id = %(audience)s AND m.version = %(version)s
                  AND (SELECT c.status FROM privacy_consentrecord c
                       WHERE c.profile_id = p.id AND c.purpose = 'direct_marketing' AND c.channel = 'email'
                         AND c.recorded_at <= %(now)s
                       ORDER BY c.recorded_at DESC, c.id DESC LIMIT 1) = 'granted'
                  AND NOT EXISTS (SELECT 1 FROM privacy_suppression s WHERE s.workspace_id = p.workspace_id
                       AND ((s.kind = 'email' AND s.hash = encode(sha256(convert_to(p.email, 'UTF8')), 'hex'))
                         OR (s.kind = 'phone' AND s.hash = encode(sha256(convert_to(p.phone, 'UTF8')), 'hex'))
                         OR EXISTS (SELECT 1 FROM customers_identity i WHERE i.profile_id = p.id AND i.type = s.kind
                                    AND s.hash = encode(sha256(convert_to(i.value, 'UTF8')), 'hex'))))
                  AND (SELECT count(*) FROM campaigns_touch t WHERE t.profile_id = p.id AND t.channel = 'email'
                       AND t.status <> 'cancelled' AND t.created_at > %(now)s - interval '7 days'
                       AND t.created_at <= %(now)s) < %(cap)s
                """,
                {"audience": audience.pk, "version": audience.current_version, "now": now, "cap": cap.max_touches},
            )
            return cursor.fetchone()[0]

    reads = [_timed(bare_read) for _ in range(repeat + 1)][1:]
    counts = [_timed(bare_count) for _ in range(repeat + 1)][1:]
    runs, written = [], 0
    try:
        for n in range(repeat):
            now = timezone.now()
            campaign = campaign_create(
                workspace=workspace,
                name=f"bench activation {n}",
                channels=["email"],
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(days=7),
                targets=[{"segment": segment, "variant": "A", "subject_template": "Bonjour {{first_name}}"}],
            )
            Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ACTIVE)
            expected = expected_deliveries(now)
            seconds, result = _timed_result(lambda c=campaign, at=now: campaign_deliveries(campaign_id=c.pk, now=at))
            written = sum(result.values())
            landed = Touch.objects.filter(campaign=campaign).count()
            if not written == landed == expected:
                sys.exit(
                    f"Activation wrote {written} touches ({landed} in the table); the independent count says {expected}."
                )
            runs.append(seconds)
            # Each run starts from no touch at all, so the cap never bites between runs.
            Touch.objects.filter(campaign=campaign).delete()
            Campaign.objects.filter(pk=campaign.pk).delete()
    finally:
        cap.delete()
        Segment.objects.filter(pk=segment.pk).delete()
    read_s, count_s, activate_s = statistics.median(reads), statistics.median(counts), statistics.median(runs)
    print(
        f"Deliveries written: {written:,} of {run.size:,} members (the others have no e-mail consent in force), "
        "equal to the independent SQL count in every run"
    )
    print(f"{'Path':<62}{'Median':>10}{'Ratio':>8}")
    for label, seconds in (
        ("bare read of the audience (all member ids to the client)", read_s),
        ("bare count of the audience", count_s),
        ("activation: consent + frequency cap + INSERT of the touches", activate_s),
    ):
        print(f"{label:<62}{seconds:>9.3f}s{seconds / read_s:>7.2f}x")
    print(f"Activation: {written / activate_s:,.0f} deliveries/s")


def _timed(function) -> float:
    return _timed_result(function)[0]


def _timed_result(function):
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def _spend_process(args) -> tuple[int, int]:
    env, campaign_ids, threads, seconds, prefix = args
    setup_django(env)
    from django.core.exceptions import ValidationError
    from django.db import connection

    from campaigns.models import Campaign
    from campaigns.services import spend_record

    counts = [0, 0]
    lock = threading.Lock()

    def write(n: int) -> None:
        campaign = Campaign.objects.get(pk=campaign_ids[n % len(campaign_ids)])
        deadline = time.monotonic() + seconds
        i = 0
        try:
            while time.monotonic() < deadline:
                i += 1
                try:
                    spend_record(campaign=campaign, amount="0.01", idempotency_key=f"{prefix}-{n}-{i}")
                    outcome = 0
                except ValidationError:
                    outcome = 1
                with lock:
                    counts[outcome] += 1
        finally:
            connection.close()

    workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return counts[0], counts[1]


def spend(workspace, env: dict, writers: list[int], seconds: float) -> None:
    from datetime import timedelta

    from django.db.models import Sum
    from django.utils import timezone

    from campaigns.models import Campaign, LedgerEntry
    from campaigns.services import campaign_create

    Campaign.objects.filter(workspace=workspace, name__startswith="bench spend").delete()
    from decimal import Decimal

    total_budget = Decimal("30.00")  # 3,000 entries of 0.01: the writers reach the cap within the run
    print(f"{'Writers':>8} {'Campaigns':>10} {'Writes/s':>10} {'Accepted':>10} {'Refused':>8} {'Spent/cap':>14}")
    for total in writers:
        for shared in (True, False):
            now = timezone.now()
            count = 1 if shared else total
            campaigns = [
                campaign_create(
                    workspace=workspace,
                    name=f"bench spend {total}-{shared}-{n}",
                    channels=["display"],
                    starts_at=now - timedelta(hours=1),
                    ends_at=now + timedelta(days=7),
                    budget_total=total_budget,
                )
                for n in range(count)
            ]
            ids = [c.pk for c in campaigns]
            Campaign.objects.filter(pk__in=ids).update(status=Campaign.Status.ACTIVE)
            processes = min(total, 8)
            per_process = [total // processes + (1 if i < total % processes else 0) for i in range(processes)]
            jobs = []
            offset = 0
            for i, threads in enumerate(per_process):
                mine = ids[offset : offset + threads] if not shared else ids
                offset += threads
                jobs.append((env, mine, threads, seconds, f"{total}-{shared}-{i}"))
            with get_context("spawn").Pool(processes) as pool:
                results = pool.map(_spend_process, jobs)
            accepted = sum(r[0] for r in results)
            refused = sum(r[1] for r in results)
            ledger = LedgerEntry.objects.filter(campaign_id__in=ids, kind="spend").aggregate(s=Sum("amount"))["s"]
            spent = Campaign.objects.filter(pk__in=ids).aggregate(s=Sum("spent"))["s"] or Decimal(0)
            cap = total_budget * count
            # Checked before anything is printed: the ledger is the spend, every accepted write is in it,
            # no campaign went past its cap, and the cap was reached (refusals are what it is for).
            if not (ledger == spent == Decimal("0.01") * accepted and spent <= cap):
                sys.exit(f"Spend does not add up: ledger {ledger}, spent {spent}, {accepted} accepted, cap {cap}")
            over = Campaign.objects.filter(pk__in=ids, spent__gt=total_budget).count()
            if over or not refused or spent != cap:
                sys.exit(f"The cap was not reached or was passed: spent {spent} of {cap}, {refused} refused")
            # Every thread writes for `seconds` once its process is set up: the rate is over that window,
            # accepted and refused writes alike (a refusal takes the same lock and reads).
            rate = (accepted + refused) / seconds
            print(f"{total:>8} {count:>10} {rate:>10,.0f} {accepted:>10,} {refused:>8} {f'{spent}/{cap}':>14}")
            Campaign.objects.filter(pk__in=ids).delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--workspace", default="bench-1m")
    parser.add_argument("--only", choices=["activation", "spend"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each spend run writes")
    args = parser.parse_args()
    check_loopback(args.database_url)
    ensure_database(args.database_url)
    env = postgres_env(args.database_url, DEFAULT_REDIS_URL)
    migrate(env)
    setup_django(env)
    from accounts.models import Workspace

    workspace = Workspace.objects.filter(slug=args.workspace).first()
    if workspace is None:
        sys.exit(f"No workspace {args.workspace!r}: run python -m bench.segments --seed 1000000 first.")
    if args.only in (None, "activation"):
        activation(workspace, args.repeat)
    if args.only in (None, "spend"):
        spend(workspace, env, args.writers, args.seconds)


if __name__ == "__main__":
    main()
