"""Customer lifetime value on a large base, each step against its limit measured in the same run.

    python -m bench.clv                        # 1,000,000 customers, about 2,000,000 orders
    python -m bench.clv --customers 100000

Under PostgreSQL's settings as they are, in the benchmark database. The workspace `bench-clv` is
seeded first when missing (untimed, set-based SQL): every profile a customer, with a first
purchase in the first year and repeat purchases drawn from a gamma mixture of purchase rates
and a lifetime after which the customer stops buying, the history that BG/NBD describes.

  1. summary: `clv_summary` (purchase days in the workspace's calendar, one GROUP BY per
     customer, the arrays) against one hand-written GROUP BY over the orders (count, first and
     last moment, sum per customer) fetched the same way; goal: within 2x;
  2. fit and score: `clv_run` after its summary (BG/NBD checked for degeneracy, Gamma-Gamma,
     standard errors, every customer's scores, deciles, the scores written by COPY), run in a
     process of its own as a worker runs it, against the library's own fit and predictions
     (PyMC-Marketing: BetaGeoModel and GammaGammaModel fitted by MAP, p_alive, expected purchases,
     expected spend and CLV) on the same in-memory arrays, in a process of its own; goal:
     within 3x, and the worker's peak memory under 4 GB.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import DEFAULT_DATABASE_URL, PROJECT, bench_workspace

SLUG = "bench-clv"
AS_OF = datetime(2026, 1, 1, tzinfo=UTC)


def seed(workspace, customers: int) -> None:
    """Profiles and orders written by INSERT ... SELECT (no Python loop over rows)."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers_profile (workspace_id, external_id, lifecycle_stage, first_name, last_name, email, "
            "phone, gender, socio_professional_category, city, postal_code, region, country, attributes, created_at, "
            "updated_at) SELECT %s, 'clv-' || n, 'customer', '', '', '', '', 'unknown', '', '', '', '', 'FR', '{}', "
            "now(), now() FROM generate_series(1, %s) n",
            [workspace.pk, customers],
        )
        # Per customer: a first purchase in 2024, a purchase rate (a gamma mixture: shape 0.5),
        # a lifetime (exponential, mean 300 days) and repeat purchases at that rate while alive.
        cursor.execute(
            """
            WITH c AS (
                SELECT p.id,
                       timestamptz '2024-01-01 10:00+00' + (random() * 365) * interval '1 day' AS first_at,
                       -- a gamma(0.5) rate per day: the square of a normal draw / 2, mean 0.5 / 120 days
                       power(sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()), 2) / 240.0 AS rate,
                       -ln(1 - random()) * 300 AS lifetime
                FROM customers_profile p WHERE p.workspace_id = %s
            ), spans AS (
                SELECT id, first_at, rate,
                       least(lifetime, extract(epoch FROM (%s - first_at)) / 86400.0) AS alive
                FROM c
            )
            INSERT INTO customers_order (workspace_id, profile_id, order_id, amount, currency, ordered_at, channel,
                                         status, items, created_at, updated_at)
            SELECT %s, s.id, 'clv-' || s.id || '-' || k,
                   round((20 + 80 * random() + CASE WHEN s.id %% 7 = 0 THEN 100 ELSE 0 END)::numeric, 2), 'EUR',
                   CASE WHEN k = 0 THEN s.first_at ELSE s.first_at + random() * s.alive * interval '1 day' END,
                   'web', CASE WHEN random() < 0.03 THEN 'refunded' ELSE 'completed' END, '[]', now(), now()
            FROM spans s
            CROSS JOIN LATERAL generate_series(0, least(floor(s.rate * s.alive * 1.4)::int, 200)) k
            """,
            [workspace.pk, AS_OF, workspace.pk],
        )
        cursor.execute("ANALYZE customers_profile")
        cursor.execute("ANALYZE customers_order")
        cursor.execute("SELECT count(*) FROM customers_order WHERE workspace_id = %s", [workspace.pk])
        orders = cursor.fetchone()[0]
    print(f"seeded {customers:,} customers and {orders:,} orders in {time.perf_counter() - started:.1f} s", flush=True)


def line(name: str, cible: float, limit: float, limit_name: str) -> None:
    print(
        f"{name:<14} Cible {cible:8.2f} s   {limit_name:<40} {limit:8.2f} s   ratio {cible / limit:5.2f}x", flush=True
    )


def bench_summary(workspace) -> None:
    from django.db import connection

    from insights.clv import clv_summary

    started = time.perf_counter()
    summary = clv_summary(workspace=workspace, as_of=AS_OF, unit="weeks")
    cible = time.perf_counter() - started
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT profile_id, count(*), min(ordered_at), max(ordered_at), sum(amount) FROM customers_order "
            "WHERE workspace_id = %s AND status = 'completed' AND ordered_at <= %s GROUP BY profile_id",
            [workspace.pk, AS_OF],
        )
        rows = cursor.fetchall()
    limit = time.perf_counter() - started
    repeat = int((summary.frequency > 0).sum())
    print(f"summary: {len(summary):,} customers ({repeat:,} with repeat purchases), {len(rows):,} grouped rows")
    line("summary", cible, limit, "one GROUP BY over the orders, fetched")


def step_cible(workspace) -> dict:
    """clv_run as a worker runs it; the time from the end of its summary to the end of the run.
    The statistics library is imported first, as in a worker that has run a job before."""
    import pymc_marketing.clv  # noqa: F401

    from insights.clv import clv_run

    marks: dict[str, float] = {}

    def progress(percent: int, step: str) -> None:
        marks.setdefault(step, time.perf_counter())

    started = time.perf_counter()
    run = clv_run(workspace=workspace, as_of=AS_OF, unit="weeks", holdout_days=0, progress=progress)
    ended = time.perf_counter()
    fitted = next(t for step, t in marks.items() if step.startswith("Fitting"))
    return {
        "status": run.status,
        "error": run.error,
        "customers": run.customers,
        "estimation": run.estimation,
        "parameters": run.parameters,
        "standard_errors": run.standard_errors,
        "total": ended - started,
        "fit_and_score": ended - fitted,
    }


def step_library(workspace) -> dict:
    """The library's own fit and predictions on the same arrays, read before the clock starts."""
    import pandas as pd
    from pymc_extras.prior import Prior
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel
    from pymc_marketing.clv.utils import customer_lifetime_value

    from insights.clv import clv_summary

    summary = clv_summary(workspace=workspace, as_of=AS_OF, unit="weeks")
    data = pd.DataFrame(
        {
            "customer_id": summary.profile_ids,
            "frequency": summary.frequency,
            "recency": summary.recency,
            "T": summary.age,
            "monetary_value": summary.monetary,
        }
    )
    counts = data[["customer_id", "frequency", "recency", "T"]]
    started = time.perf_counter()
    bgnbd = BetaGeoModel(model_config={name: Prior("HalfFlat") for name in ("r", "alpha", "a", "b")})
    bgnbd.fit(data=counts, method="map", progressbar=False)
    bgnbd.expected_probability_alive(data=counts)
    bgnbd.expected_purchases(data=counts, future_t=90 / 7)
    repeat = data[data.frequency > 0][["customer_id", "frequency", "monetary_value"]]
    gamma_gamma = GammaGammaModel(model_config={name: Prior("HalfFlat") for name in ("p", "q", "v")})
    gamma_gamma.fit(data=repeat, method="map", progressbar=False)
    data["future_spend"] = gamma_gamma.expected_customer_spend(
        data=data[["customer_id", "frequency", "monetary_value"]]
    ).mean(("chain", "draw"))
    customer_lifetime_value(
        bgnbd,
        data[["customer_id", "frequency", "recency", "T", "future_spend"]],
        future_t=12,
        discount_rate=0.01,
        time_unit="W",
    )
    return {"fit_and_predict": time.perf_counter() - started}


def in_process(step: str, database_url: str) -> dict:
    """Run a step in a fresh Python process (as a worker would) and read its figures and peak memory."""
    output = subprocess.run(
        [sys.executable, "-m", "bench.clv", "--step", step, "--database-url", database_url],
        cwd=PROJECT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--step", choices=("cible", "library"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        workspace = bench_workspace(args.database_url, SLUG, 0)
        figures = (step_cible if args.step == "cible" else step_library)(workspace)
        figures["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
        print(json.dumps(figures), flush=True)
        return
    workspace = _workspace(args.database_url, args.customers)
    bench_summary(workspace)
    cible = in_process("cible", args.database_url)
    if cible["status"] != "ready":
        sys.exit(f"The run failed: {cible['error']}")
    library = in_process("library", args.database_url)
    print(f"fit and score: {cible['customers']:,} customers; {cible['estimation'] or 'maximum likelihood'}")
    print(f"  parameters {cible['parameters']}")
    print(f"  standard errors {cible['standard_errors']}")
    line("fit and score", cible["fit_and_score"], library["fit_and_predict"], "the library's fit and predict")
    print(f"clv_run in all (summary included): {cible['total']:.2f} s")
    print(f"peak memory: the worker's process {cible['peak_gb']:.2f} GB, the library's {library['peak_gb']:.2f} GB")


def _workspace(database_url: str, customers: int):
    """The seeded workspace (created and seeded when missing)."""
    import django

    from bench._common import check_loopback, ensure_database, migrate, postgres_env

    check_loopback(database_url)
    ensure_database(database_url)
    env = postgres_env(database_url)
    migrate(env)
    os.environ.update({k: v for k, v in env.items() if k in ("DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY")})
    os.environ["DJANGO_ALLOWED_HOSTS"] = env["DJANGO_ALLOWED_HOSTS"]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from accounts.models import Workspace

    workspace, created = Workspace.objects.get_or_create(slug=SLUG, defaults={"name": "CLV benchmark"})
    if created:
        seed(workspace, customers)
    return workspace


if __name__ == "__main__":
    main()
