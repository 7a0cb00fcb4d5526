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
from decimal import Decimal

import numpy as np
from django.db import connection

from privacy.models import ConsentPurpose, ConsentRecord, ConsentStatus

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
        monetary=np.asarray([float(v) if isinstance(v, Decimal) else float(v or 0) for v in columns[4]]),
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
