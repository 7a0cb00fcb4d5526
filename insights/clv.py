"""Customer lifetime value: who is still a customer, how much each will buy, and what each is worth.

The buy-till-you-die models: BG/NBD (Fader, Hardie & Lee 2005) for the number of future
purchases and the probability that a customer is still active, and Gamma-Gamma for the value
of a purchase. Both need only each customer's order history, summed up as of a moment:

- a purchase is a day of the workspace's calendar with at least one completed order: orders
  of the same day count as one purchase, their amounts summed (the convention of the published
  results);
- cancelled and refunded orders do not count at all, as in RFM: a refund undoes the purchase;
- frequency = purchases - 1 (the repeat purchases); recency = from the first purchase to the
  last; age (T) = from the first purchase to the moment; in days or weeks;
- monetary = the mean value of the repeat purchases (the first is left out, as the published
  results do), 0 without any;
- who: every profile with a completed order up to the moment, not erased, whose consent to
  profiling is not refused.

The summary is one set-based statement (purchase days, then one GROUP BY per customer). The
statistics are PyMC-Marketing's CLV module, fitted by MAP with flat priors, which is the
maximum-likelihood estimate the published results report (tests/insights/test_clv.py checks
them on CDNOW).
"""

import zoneinfo
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from core.sql import arrays_copy
from core.statistics import rows_written
from insights.models import ClvRun, ClvScore
from privacy.models import ConsentPurpose, ConsentRecord, ConsentStatus
from segments.models import JobStatus

UNITS = {"days": 1.0, "weeks": 7.0}


@dataclass
class Summary:
    """Per customer, as arrays in the same order (profile ids ascending)."""

    profile_ids: np.ndarray
    frequency: np.ndarray  # repeat purchase days
    recency: np.ndarray  # first to last purchase, in `unit`
    age: np.ndarray  # first purchase to `as_of` (the models' T), in `unit`
    monetary: np.ndarray  # mean value of the repeat purchases, 0 without any
    as_of: datetime
    unit: str

    def __len__(self) -> int:
        return len(self.profile_ids)


def _day_sql(time_zone: str, as_of: datetime) -> tuple[str, str, list]:
    """SQL for an order's day in the workspace's calendar, for `as_of`'s day, and their parameters.

    PostgreSQL converts each moment in the zone. SQLite has no time zones: days are taken at the
    zone's offset at `as_of` (the embedded default, for small data; an hour off around midnight
    across a daylight-saving change)."""
    if connection.vendor == "postgresql":
        return "(o.ordered_at AT TIME ZONE %s)::date", "(%s AT TIME ZONE %s)::date", [time_zone]
    offset = as_of.astimezone(zoneinfo.ZoneInfo(time_zone)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    return f"date(o.ordered_at, '{minutes:+d} minutes')", f"date(%s, '{minutes:+d} minutes')", []


def clv_summary(*, workspace, as_of: datetime, unit: str = "weeks") -> Summary:
    """Frequency, recency, age and monetary value of every customer as of `as_of` (see the module)."""
    if unit not in UNITS:
        raise ValueError(f"unit: one of {', '.join(UNITS)}")
    at = connection.ops.adapt_datetimefield_value(as_of)
    refused = (
        ConsentRecord.objects.filter(workspace_id=workspace.pk, purpose=ConsentPurpose.PROFILING)
        .valid_at(as_of)
        .exclude(status=ConsentStatus.GRANTED)
    )
    refused_sql, refused_params = refused.values("profile_id").query.sql_with_params()
    day, as_of_day, zone_params = _day_sql(workspace.time_zone, as_of)
    if connection.vendor == "postgresql":
        span = "({b} - {a})"
    else:
        span = "(julianday({b}) - julianday({a}))"
    sql = f"""
        WITH days AS (
            SELECT o.profile_id, {day} AS day, SUM(o.amount) AS value
            FROM customers_order o
            WHERE o.workspace_id = %s AND o.status = 'completed' AND o.ordered_at <= %s
            GROUP BY 1, 2
        ), customers AS (
            SELECT d.profile_id, MIN(d.day) AS first_day, MAX(d.day) AS last_day, COUNT(*) AS n,
                   SUM(d.value) AS total
            FROM days d
            JOIN customers_profile p ON p.id = d.profile_id
            WHERE p.erased_at IS NULL
              AND NOT EXISTS (SELECT 1 FROM ({refused_sql}) _r WHERE _r.profile_id = d.profile_id)
            GROUP BY d.profile_id
        )
        SELECT c.profile_id, c.n - 1,
               {span.format(a="c.first_day", b="c.last_day")},
               {span.format(a="c.first_day", b=as_of_day)},
               CASE WHEN c.n > 1 THEN (c.total - f.value) / (c.n - 1) ELSE 0 END
        FROM customers c
        JOIN days f ON f.profile_id = c.profile_id AND f.day = c.first_day
        ORDER BY c.profile_id
    """
    params = [*zone_params, workspace.pk, at, *refused_params, at, *zone_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    per_unit = UNITS[unit]
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), (), ()]
    return Summary(
        profile_ids=np.asarray(columns[0], dtype=np.int64),
        frequency=np.asarray(columns[1], dtype=np.float64),
        recency=np.asarray([float(v) for v in columns[2]], dtype=np.float64) / per_unit,
        age=np.asarray([float(v) for v in columns[3]], dtype=np.float64) / per_unit,
        monetary=np.asarray([float(v or 0) for v in columns[4]], dtype=np.float64),
        as_of=as_of,
        unit=unit,
    )


# --- the models ----------------------------------------------------------------------------------

BGNBD_PARAMETERS = ("r", "alpha", "a", "b")
GAMMA_GAMMA_PARAMETERS = ("p", "q", "v")


def _flat(names: tuple[str, ...]) -> dict:
    """Flat priors on the parameters: the MAP estimate is then the maximum-likelihood estimate."""
    from pymc_extras.prior import Prior

    return {name: Prior("HalfFlat") for name in names}


def _frame(summary: Summary, mask: np.ndarray | None = None):
    import pandas as pd

    keep = np.ones(len(summary), dtype=bool) if mask is None else mask
    return pd.DataFrame(
        {
            "customer_id": summary.profile_ids[keep],
            "frequency": summary.frequency[keep],
            "recency": summary.recency[keep],
            "T": summary.age[keep],
            "monetary_value": summary.monetary[keep],
        }
    )


def bgnbd_fit(summary: Summary):
    """BG/NBD fitted on every customer of the summary (PyMC-Marketing's BetaGeoModel, MAP)."""
    from pymc_marketing.clv import BetaGeoModel

    model = BetaGeoModel(model_config=_flat(BGNBD_PARAMETERS))
    model.fit(data=_frame(summary)[["customer_id", "frequency", "recency", "T"]], method="map", progressbar=False)
    return model


def gamma_gamma_fit(summary: Summary):
    """Gamma-Gamma fitted on the customers with repeat purchases (their mean repeat value)."""
    from pymc_marketing.clv import GammaGammaModel

    repeat = summary.frequency > 0
    model = GammaGammaModel(model_config=_flat(GAMMA_GAMMA_PARAMETERS))
    model.fit(
        data=_frame(summary, repeat)[["customer_id", "frequency", "monetary_value"]], method="map", progressbar=False
    )
    return model


def fitted_parameters(model, names: tuple[str, ...]) -> dict[str, float]:
    summary = model.fit_summary()
    return {name: float(summary[name]) for name in names}


# --- a run: fit, score every customer, keep the current and the previous run ---------------------

# Fewer customers than this, or fewer repeat customers, and the models are not fitted: the run
# fails saying so rather than reporting estimates from a handful of people.
MIN_CUSTOMERS = 30
MIN_REPEAT_CUSTOMERS = 10
# Gamma-Gamma assumes the value of a purchase independent of the frequency; past this correlation
# (in absolute value, repeat customers) the run warns.
CORRELATION_WARNING = 0.3
TIME_UNITS = {"days": "D", "weeks": "W"}


def _mean(draws) -> np.ndarray:
    """A MAP fit's prediction (one chain, one draw) as a plain array, in the data's order."""
    return np.asarray(draws.mean(("chain", "draw")).values, dtype=np.float64)


def clv_scores(summary: Summary, bgnbd, gamma_gamma, *, purchase_days: int, horizon_months: int, discount_rate: float):
    """Per customer: p_alive, expected purchases over `purchase_days`, expected value of a purchase
    and the discounted CLV over `horizon_months`, as arrays in the summary's order."""
    from pymc_marketing.clv.utils import customer_lifetime_value

    frame = _frame(summary)
    p_alive = _mean(bgnbd.expected_probability_alive(data=frame[["customer_id", "frequency", "recency", "T"]]))
    ahead = purchase_days / UNITS[summary.unit]
    purchases = _mean(
        bgnbd.expected_purchases(data=frame[["customer_id", "frequency", "recency", "T"]], future_t=ahead)
    )
    # For a customer without repeat purchases, Gamma-Gamma's expectation is the population's mean.
    value = _mean(gamma_gamma.expected_customer_spend(data=frame[["customer_id", "frequency", "monetary_value"]]))
    frame["future_spend"] = value
    clv = _mean(
        customer_lifetime_value(
            bgnbd,
            frame[["customer_id", "frequency", "recency", "T", "future_spend"]],
            future_t=horizon_months,
            discount_rate=discount_rate,
            time_unit=TIME_UNITS[summary.unit],
        )
    )
    return p_alive, purchases, value, clv


def deciles_of(clv: np.ndarray) -> np.ndarray:
    """1 to 10 by ascending CLV (10 = the most valuable tenth); ties split by the data's order."""
    n = len(clv)
    ranks = np.empty(n, dtype=np.int64)
    ranks[np.argsort(clv, kind="stable")] = np.arange(n)
    return (1 + (10 * ranks) // max(n, 1)).astype(np.int32)


def clv_run(
    *,
    workspace,
    as_of: datetime | None = None,
    unit: str = "weeks",
    horizon_months: int = 12,
    discount_rate: float = 0.01,
    purchase_days: int = 90,
    progress=None,
):
    """Fit both models on the workspace's customers as of `as_of` and score every customer; the
    run is READY once whole, or FAILED saying why. The run before it is kept."""

    as_of = as_of or timezone.now()
    previous = ClvRun.current(workspace_id=workspace.pk)
    with transaction.atomic():
        run = ClvRun.objects.create(
            workspace=workspace,
            version=ClvRun.next_version(workspace),
            as_of=as_of,
            unit=unit,
            horizon_months=horizon_months,
            discount_rate=discount_rate,
            purchase_days=purchase_days,
            previous=previous,
        )
    if progress:
        progress(10, "Summing up every customer's purchases")
    summary = clv_summary(workspace=workspace, as_of=as_of, unit=unit)
    repeat = summary.frequency > 0
    if len(summary) < MIN_CUSTOMERS or int(repeat.sum()) < MIN_REPEAT_CUSTOMERS:
        ClvRun.objects.filter(pk=run.pk).update(
            status=JobStatus.FAILED,
            customers=len(summary),
            error=f"Too little history to fit: {len(summary)} customers, {int(repeat.sum())} with repeat purchases "
            f"(at least {MIN_CUSTOMERS} and {MIN_REPEAT_CUSTOMERS} are needed).",
        )
        run.refresh_from_db()
        return run
    if progress:
        progress(30, "Fitting BG/NBD and Gamma-Gamma")
    bgnbd, gamma_gamma = bgnbd_fit(summary), gamma_gamma_fit(summary)
    if progress:
        progress(60, "Scoring every customer")
    p_alive, purchases, value, clv = clv_scores(
        summary,
        bgnbd,
        gamma_gamma,
        purchase_days=purchase_days,
        horizon_months=horizon_months,
        discount_rate=discount_rate,
    )
    deciles = deciles_of(clv)
    n = len(summary)
    with transaction.atomic():
        arrays_copy(
            table=ClvScore._meta.db_table,
            columns=[
                "workspace_id",
                "run_id",
                "profile_id",
                "frequency",
                "recency",
                "age",
                "monetary",
                "p_alive",
                "purchases",
                "value",
                "clv",
                "decile",
            ],
            arrays=[
                np.full(n, workspace.pk, dtype=np.int64),
                np.full(n, run.pk, dtype=np.int64),
                summary.profile_ids,
                summary.frequency,
                summary.recency,
                summary.age,
                summary.monetary,
                p_alive,
                purchases,
                value,
                clv,
                deciles,
            ],
        )
    rows_written(model=ClvScore, rows=n, wait=True)
    total = float(clv.sum())
    by_decile = [
        {
            "decile": d,
            "customers": int((deciles == d).sum()),
            "clv": round(float(clv[deciles == d].sum()), 2),
            "share": round(float(clv[deciles == d].sum()) / total, 6) if total else None,
        }
        for d in range(10, 0, -1)
    ]
    correlation = float(np.corrcoef(summary.frequency[repeat], summary.monetary[repeat])[0, 1])
    ClvRun.objects.filter(pk=run.pk).update(
        status=JobStatus.READY,
        customers=n,
        parameters={
            "bgnbd": fitted_parameters(bgnbd, BGNBD_PARAMETERS),
            "gamma_gamma": fitted_parameters(gamma_gamma, GAMMA_GAMMA_PARAMETERS),
        },
        frequency_value_correlation=None if np.isnan(correlation) else round(correlation, 6),
        deciles=by_decile,
    )
    # Keep this run and the one before it.
    ClvScore.objects.filter(workspace_id=workspace.pk).exclude(
        run_id__in=[run.pk, previous.pk if previous else 0]
    ).delete()
    run.refresh_from_db()
    return run
