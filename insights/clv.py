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
from datetime import datetime, timedelta
from typing import Any

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
    total: np.ndarray  # value of every purchase
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
               CASE WHEN c.n > 1 THEN (c.total - f.value) / (c.n - 1) ELSE 0 END,
               c.total
        FROM customers c
        JOIN days f ON f.profile_id = c.profile_id AND f.day = c.first_day
        ORDER BY c.profile_id
    """
    params = [*zone_params, workspace.pk, at, *refused_params, at, *zone_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    per_unit = UNITS[unit]
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), (), (), ()]
    return Summary(
        profile_ids=np.asarray(columns[0], dtype=np.int64),
        frequency=np.asarray(columns[1], dtype=np.float64),
        recency=np.asarray([float(v) for v in columns[2]], dtype=np.float64) / per_unit,
        age=np.asarray([float(v) for v in columns[3]], dtype=np.float64) / per_unit,
        monetary=np.asarray([float(v or 0) for v in columns[4]], dtype=np.float64),
        total=np.asarray([float(v or 0) for v in columns[5]], dtype=np.float64),
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


def bgnbd_fit(summary: Summary, *, regularised: bool = False):
    """BG/NBD fitted on every customer of the summary (PyMC-Marketing's BetaGeoModel, MAP): the
    maximum-likelihood estimate, or with `regularised` the library's default weakly informative
    priors."""
    from pymc_marketing.clv import BetaGeoModel

    model = BetaGeoModel(model_config=None if regularised else _flat(BGNBD_PARAMETERS))
    model.fit(data=_frame(summary)[["customer_id", "frequency", "recency", "T"]], method="map", progressbar=False)
    return model


# Past this, a BG/NBD parameter has run off to infinity: the likelihood is highest where every
# customer buys at the same rate (r and alpha grow together) and the model's functions overflow.
DEGENERATE = 1e6
REGULARISED_NOTE = (
    "The maximum-likelihood estimate is degenerate ({found}): purchase rates vary too little between "
    "customers for BG/NBD to tell them apart, so it was fitted with PyMC-Marketing's default weakly "
    "informative priors instead; standard errors are not given for that fit."
)


def bgnbd_fit_checked(summary: Summary):
    """The maximum-likelihood BG/NBD, or the regularised one when that estimate is degenerate;
    with a note saying which when it is the latter."""
    model = bgnbd_fit(summary)
    estimate = fitted_parameters(model, BGNBD_PARAMETERS)
    if all(np.isfinite(value) and value < DEGENERATE for value in estimate.values()):
        return model, ""
    found = ", ".join(f"{name} = {value:.3g}" for name, value in estimate.items())
    return bgnbd_fit(summary, regularised=True), REGULARISED_NOTE.format(found=found)


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
    """The estimates, unrounded (the library's fit_summary rounds them to 3 decimals)."""
    posterior = model.idata.posterior
    return {name: float(posterior[name].mean()) for name in names}


def standard_errors(model, names: tuple[str, ...]) -> dict[str, float | None]:
    """Each parameter's standard error, from the curvature of the log-likelihood at the estimate
    (the inverse of the observed information), as lifetimes and the published tables report it.

    The fitted model samples each parameter on the log scale (u = ln theta), where the flat prior
    adds only u itself to the log density: a term without curvature, so the log density's Hessian
    there is the log-likelihood's. Central differences of the model's compiled log density give it
    (one function already compiled for the fit; 4 x n^2 evaluations, vectorised over customers),
    and at the maximum se(theta) = theta x se(u). None when the curvature is not that of a maximum.
    """
    pm_model = model.model
    rvs = list(pm_model.free_RVs)
    if {rv.name for rv in rvs} != set(names):  # a model parametrised otherwise (the regularised BG/NBD)
        return dict.fromkeys(names)
    value_names = [pm_model.rvs_to_values[rv].name for rv in rvs]
    estimate = fitted_parameters(model, names)
    u0 = np.log(np.asarray([estimate[rv.name] for rv in rvs]))
    logp = pm_model.compile_logp(jacobian=True)

    def at(u: np.ndarray) -> float:
        return float(logp(dict(zip(value_names, u, strict=True))))

    n, h = len(rvs), 1e-4
    step = np.eye(n) * h
    hessian = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            hessian[i, j] = hessian[j, i] = (
                at(u0 + step[i] + step[j])
                - at(u0 + step[i] - step[j])
                - at(u0 - step[i] + step[j])
                + at(u0 - step[i] - step[j])
            ) / (4 * h * h)
    try:
        variances = np.diag(np.linalg.inv(-hessian))
    except np.linalg.LinAlgError:
        variances = np.full(n, np.nan)
    return {
        rv.name: float(np.exp(u0[i]) * np.sqrt(variances[i])) if variances[i] > 0 else None for i, rv in enumerate(rvs)
    }


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


def clv_scores(
    summary: Summary, bgnbd, gamma_gamma, *, purchase_days: int, horizon_months: int, discount_rate: float
) -> dict[str, np.ndarray]:
    """Per customer, as arrays in the summary's order: p_alive, the expected purchases over
    `purchase_days`, the expected value of a purchase, the expected value of the next 12 months
    (not discounted), the discounted CLV over `horizon_months`, and what was spent per year so far."""
    from pymc_marketing.clv.utils import customer_lifetime_value

    frame = _frame(summary)
    counts = frame[["customer_id", "frequency", "recency", "T"]]
    p_alive = _mean(bgnbd.expected_probability_alive(data=counts))
    per_unit = UNITS[summary.unit]
    purchases = _mean(bgnbd.expected_purchases(data=counts, future_t=purchase_days / per_unit))
    purchases_12m = _mean(bgnbd.expected_purchases(data=counts, future_t=365.25 / per_unit))
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
    years = np.maximum(summary.age * per_unit / 365.25, 1.0)
    return {
        "p_alive": p_alive,
        "purchases": purchases,
        "value": value,
        "value_12m": purchases_12m * value,
        "clv": clv,
        "spend_per_year": summary.total / years,
    }


# The holdout check's bands of calibration frequency: 0 to 6 repeat purchases, then 7 and more
# (the bands of the published conditional-expectation chart).
HOLDOUT_BANDS = 7


def holdout_check(*, workspace, summary: Summary, days: int) -> dict:
    """How well BG/NBD forecasts this history: fitted again on the customers as of `days` before
    the summary's moment (the calibration), its expected purchases over those days against the
    purchase days each customer made in them, in total and by calibration frequency.

    Purchase days made in the window are the customer's purchase days at the end less those at
    the calibration end. People who left the summary since (erased, profiling refused) are left
    out of both sides. Skipped, saying why, when there are too few customers before the window
    to fit (MIN_CUSTOMERS, MIN_REPEAT_CUSTOMERS)."""
    end = summary.as_of - timedelta(days=days)
    check: dict[str, Any] = {"days": days, "calibration_end": end.isoformat()}
    calibration = clv_summary(workspace=workspace, as_of=end, unit=summary.unit)
    repeat = int((calibration.frequency > 0).sum())
    per_unit = UNITS[summary.unit]
    if len(calibration) < MIN_CUSTOMERS or repeat < MIN_REPEAT_CUSTOMERS:
        return {
            **check,
            "skipped": f"Too little history before {end:%Y-%m-%d}: {len(calibration)} customers, {repeat} with repeat "
            f"purchases (at least {MIN_CUSTOMERS} and {MIN_REPEAT_CUSTOMERS} are needed).",
        }
    n = len(summary)
    at = np.minimum(np.searchsorted(summary.profile_ids, calibration.profile_ids), max(n - 1, 0))
    kept = summary.profile_ids[at] == calibration.profile_ids
    model, estimation = bgnbd_fit_checked(calibration)
    if estimation:
        check["estimation"] = estimation
    frame = _frame(calibration, kept)[["customer_id", "frequency", "recency", "T"]]
    expected = _mean(model.expected_purchases(data=frame, future_t=days / per_unit))
    actual = summary.frequency[at[kept]] - calibration.frequency[kept]
    band = np.minimum(calibration.frequency[kept], HOLDOUT_BANDS).astype(np.int64)
    return {
        **check,
        "customers": int(kept.sum()),
        "expected": round(float(expected.sum()), 2),
        "actual": int(actual.sum()),
        "bands": [
            {
                "frequency": str(b) if b < HOLDOUT_BANDS else f"{HOLDOUT_BANDS}+",
                "customers": int((band == b).sum()),
                "expected": round(float(expected[band == b].sum()), 2),
                "actual": int(actual[band == b].sum()),
            }
            for b in range(HOLDOUT_BANDS + 1)
        ],
    }


def _p_alive_change(summary: Summary, p_alive: np.ndarray, previous: ClvRun) -> np.ndarray:
    """p_alive less the previous run's for the same customer (NaN, stored as NULL, when the
    customer was not in it): one read of the previous run's scores, matched by profile id."""
    change = np.full(len(summary), np.nan)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT profile_id, p_alive FROM {ClvScore._meta.db_table} WHERE run_id = %s ORDER BY profile_id",
            [previous.pk],
        )
        rows = cursor.fetchall()
    if not rows:
        return change
    ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    before = np.fromiter((row[1] for row in rows), dtype=np.float64, count=len(rows))
    at = np.minimum(np.searchsorted(ids, summary.profile_ids), len(ids) - 1)
    found = ids[at] == summary.profile_ids
    change[found] = p_alive[found] - before[at[found]]
    return change


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
    holdout_days: int = 90,
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
            holdout_days=holdout_days,
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
        progress(20, "Fitting BG/NBD and Gamma-Gamma")
    (bgnbd, estimation), gamma_gamma = bgnbd_fit_checked(summary), gamma_gamma_fit(summary)
    errors = {
        "bgnbd": standard_errors(bgnbd, BGNBD_PARAMETERS),
        "gamma_gamma": standard_errors(gamma_gamma, GAMMA_GAMMA_PARAMETERS),
    }
    if progress:
        progress(40, "Scoring every customer")
    scores = clv_scores(
        summary,
        bgnbd,
        gamma_gamma,
        purchase_days=purchase_days,
        horizon_months=horizon_months,
        discount_rate=discount_rate,
    )
    infinite = sum(int((~np.isfinite(values)).sum()) for values in scores.values())
    if infinite:
        ClvRun.objects.filter(pk=run.pk).update(
            status=JobStatus.FAILED,
            customers=len(summary),
            parameters={
                "bgnbd": fitted_parameters(bgnbd, BGNBD_PARAMETERS),
                "gamma_gamma": fitted_parameters(gamma_gamma, GAMMA_GAMMA_PARAMETERS),
            },
            error=f"The fitted models give {infinite} scores that are not finite numbers; nothing was scored.",
        )
        run.refresh_from_db()
        return run
    clv = scores["clv"]
    deciles = deciles_of(clv)
    n = len(summary)
    columns = {
        "workspace_id": np.full(n, workspace.pk, dtype=np.int64),
        "run_id": np.full(n, run.pk, dtype=np.int64),
        "profile_id": summary.profile_ids,
        "frequency": summary.frequency,
        "recency": summary.recency,
        "age": summary.age,
        "monetary": summary.monetary,
        "p_alive": scores["p_alive"],
        "purchases": scores["purchases"],
        "value": scores["value"],
        "value_12m": scores["value_12m"],
        "spend_per_year": scores["spend_per_year"],
        "clv": clv,
        "decile": deciles,
    }
    if previous is not None:
        columns["p_alive_change"] = _p_alive_change(summary, scores["p_alive"], previous)
    with transaction.atomic():
        arrays_copy(table=ClvScore._meta.db_table, columns=list(columns), arrays=list(columns.values()))
        if previous is not None and connection.vendor == "postgresql":
            # A customer new since the previous run has no change: NULL, not the NaN the COPY carried
            # (SQLite stores a NaN as NULL itself).
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {ClvScore._meta.db_table} SET p_alive_change = NULL "
                    "WHERE run_id = %s AND p_alive_change = 'NaN'::float8",
                    [run.pk],
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
    if holdout_days:
        if progress:
            progress(70, f"Checking the forecast of the last {holdout_days} days")
        holdout = holdout_check(workspace=workspace, summary=summary, days=holdout_days)
    else:
        holdout = {}
    ClvRun.objects.filter(pk=run.pk).update(
        status=JobStatus.READY,
        customers=n,
        parameters={
            "bgnbd": fitted_parameters(bgnbd, BGNBD_PARAMETERS),
            "gamma_gamma": fitted_parameters(gamma_gamma, GAMMA_GAMMA_PARAMETERS),
        },
        standard_errors=errors,
        estimation=estimation,
        frequency_value_correlation=None if np.isnan(correlation) else round(correlation, 6),
        holdout=holdout,
        deciles=by_decile,
    )
    # Keep this run and the one before it.
    ClvScore.objects.filter(workspace_id=workspace.pk).exclude(
        run_id__in=[run.pk, previous.pk if previous else 0]
    ).delete()
    run.refresh_from_db()
    return run
