"""The exchange simulator (bench/exchange.py) played small in the test suite: a day of bid
requests, second-price auctions and notices against the bidder, with new carts, consent
withdrawn at 18:00 and the cart campaign paused at 20:00. Its checks must all pass: caps held,
no bid without consent or for the paused campaign, and the bid days and the ledger equal to the
exchange's billing though a tenth of the notices came twice. (Pacing needs more impressions an
hour than a test affords: the benchmark checks it at its size, see bench/README.md.)"""

import re
from decimal import Decimal

import pytest

from tests.bidder.conftest import REDIS_URL

pytestmark = pytest.mark.postgres


@pytest.mark.django_db(transaction=True)
def test_an_exchanges_day_bids_wins_spends_and_reports(settings, eager_tasks, capsys):
    from bench.exchange import run

    settings.BIDDER_REDIS_URL = REDIS_URL
    failed = run(profiles=1_500, requests=4_000, budget=Decimal("6"), seed=3, redis_url=REDIS_URL, check_pacing=False)
    out = capsys.readouterr().out
    assert failed == 0, out
    assert "all checks passed" in out
    billed = {
        name: int(n.replace(",", ""))
        for name, n in re.findall(r"^(sale|cart reminder): exchange billed ([\d,]+)", out, re.M)
    }
    assert billed["sale"] > 50 and billed["cart reminder"] > 10, out
