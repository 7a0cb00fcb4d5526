from decimal import Decimal

from reporting.kpis import frequency, kpis


def test_kpi_formulas():
    values = kpis(impressions=20000, clicks=400, spend=Decimal("500.00"), conversions=20, revenue=Decimal("1750.00"))
    assert values == {
        "ctr": Decimal("0.020000"),  # 400 / 20,000
        "cpm": Decimal("25.0000"),  # 500 / 20,000 x 1000
        "cpc": Decimal("1.2500"),  # 500 / 400
        "cvr": Decimal("0.050000"),  # 20 / 400
        "cpa": Decimal("25.0000"),  # 500 / 20
        "roas": Decimal("3.5000"),  # 1,750 / 500
    }


def test_a_zero_denominator_gives_none_never_zero_or_an_error():
    values = kpis(impressions=0, clicks=0, spend=Decimal(0), conversions=0, revenue=Decimal("80.00"))
    assert values == dict.fromkeys(["ctr", "cpm", "cpc", "cvr", "cpa", "roas"])
    # a zero numerator is a real zero
    values = kpis(impressions=1000, clicks=0, spend=Decimal("10.00"), conversions=0, revenue=Decimal(0))
    assert values["ctr"] == 0 and values["roas"] == 0 and values["cpm"] == Decimal("10.0000")
    assert values["cpc"] is None and values["cvr"] is None and values["cpa"] is None


def test_frequency_is_deliveries_per_person_reached():
    assert frequency(30, 12) == Decimal("2.5000")
    assert frequency(0, 0) is None
