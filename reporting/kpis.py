"""The KPIs, defined once (DESIGN.md, Reporting). A ratio with a zero denominator is None, never 0."""

from decimal import Decimal
from typing import Any

RATIO = Decimal("0.000001")  # CTR and CVR: fractions, six places
MONEY_RATIO = Decimal("0.0001")  # CPM, CPC, CPA, ROAS, frequency: four places

KPI_NAMES = ("ctr", "cpm", "cpc", "cvr", "cpa", "roas")


def ratio(numerator: Any, denominator: Any, places: Decimal, scale: int = 1) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) * scale / Decimal(denominator)).quantize(places)


def kpis(*, impressions: int, clicks: int, spend: Decimal, conversions: int, revenue: Decimal) -> dict:
    """CTR = clicks / impressions; CPM = spend / impressions x 1000; CPC = spend / clicks;
    CVR = conversions / clicks; CPA = spend / conversions; ROAS = revenue / spend."""
    return {
        "ctr": ratio(clicks, impressions, RATIO),
        "cpm": ratio(spend, impressions, MONEY_RATIO, 1000),
        "cpc": ratio(spend, clicks, MONEY_RATIO),
        "cvr": ratio(conversions, clicks, RATIO),
        "cpa": ratio(spend, conversions, MONEY_RATIO),
        "roas": ratio(revenue, spend, MONEY_RATIO),
    }


def frequency(sends: int, reach: int) -> Decimal | None:
    """Deliveries per person reached."""
    return ratio(sends, reach, MONEY_RATIO)
