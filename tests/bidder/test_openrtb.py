"""The bidder, as an exchange meets it: the IAB's own OpenRTB 2.6 example requests and hostile
ones, against a real bidder process and a real Redis."""

import json
from pathlib import Path

import orjson
import pytest
import requests

from programmatic import state as keys
from tests.bidder.conftest import SLUG, WORKSPACE, line_item, publish

pytestmark = pytest.mark.postgres  # run once, in the PostgreSQL run (which has Redis)

IAB = Path(__file__).parent / "iab"
HEADERS = {"x-openrtb-version": "2.6", "content-type": "application/json"}


def example(name: str) -> dict:
    """An example request published with the OpenRTB 2.6 specification (section 6.2)."""
    return json.loads((IAB / f"{name}.json").read_text())


def post(url: str, body, **params) -> requests.Response:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return requests.post(f"{url}/openrtb2/{SLUG}", data=data, headers=HEADERS, params=params, timeout=5)


def today() -> str:
    """The day the bidder counts in: the workspace's (Europe/Paris in these tests)."""
    import zoneinfo
    from datetime import datetime

    return datetime.now(zoneinfo.ZoneInfo("Europe/Paris")).strftime("%Y%m%d")


def stats(store) -> dict[str, int]:
    raw = store.hgetall(keys.stats_key(WORKSPACE, today()))
    return {k.decode(): int(v) for k, v in raw.items()}


def test_the_iab_examples_are_understood_and_answered_as_the_spec_says(bidder_url, store):
    publish(store, line_item())
    # Example 1, a simple banner: 300x250 on a site, a floor of 0.03 USD, first price.
    r = post(bidder_url, example("simple_banner"))
    assert r.status_code == 200 and r.headers["x-openrtb-version"] == "2.6", r.content
    body = r.json()
    assert body["id"] == "80ce30c53c16e6ede735f123ef6e32361bfc7b22" and body["cur"] == "USD"
    (seat,) = body["seatbid"]
    (bid,) = seat["bid"]
    assert bid["impid"] == "1" and (bid["w"], bid["h"]) == (300, 250) and bid["mtype"] == 1
    assert bid["crid"] == "21" and bid["cid"] == "3" and bid["adomain"] == ["shop.example"]
    assert bid["price"] == pytest.approx(2.5 / 0.9, abs=1e-4)  # 2.50 EUR at 0.9 EUR the dollar
    assert "shop.example/300x250.png" in bid["adm"]
    for url in ("nurl", "burl", "lurl"):
        assert bid[url].startswith(f"{bidder_url}/notice/{SLUG}/") and "${AUCTION_PRICE}" in bid[url]
    assert "${AUCTION_LOSS}" in bid["lurl"]
    # Example 2, an expandable creative, second price, with a buyer id Cible does not know.
    assert post(bidder_url, example("expandable_creative")).status_code == 200
    # Example 3, a 728x90 in an app: it blocks IAB25 and three advertisers, not ours.
    mobile = post(bidder_url, example("mobile"))
    assert mobile.status_code == 200 and mobile.json()["seatbid"][0]["bid"][0]["w"] == 728
    # Example 4, a video: Cible has banners only.
    assert post(bidder_url, example("video")).status_code == 204
    # Example 5, a private auction for two deals: Cible buys in the open auction.
    assert post(bidder_url, example("pmp_direct_deal")).status_code == 204
    counted = stats(store)
    assert counted["11:bid"] == 3 and counted["nobid:size"] == 1 and counted["nobid:private_auction"] == 1


def test_blocked_advertisers_and_categories_and_sizes(bidder_url, store):
    publish(store, line_item())
    mobile = example("mobile")
    mobile["badv"].append("SHOP.example")
    assert post(bidder_url, mobile).status_code == 204
    mobile = example("mobile")
    mobile["bcat"].append("IAB22")
    assert post(bidder_url, mobile).status_code == 204
    formats = example("simple_banner")
    formats["imp"][0]["banner"] = {"format": [{"w": 320, "h": 50}, {"w": 728, "h": 90}]}
    r = post(bidder_url, formats)
    assert r.status_code == 200 and r.json()["seatbid"][0]["bid"][0]["crid"] == "22"
    assert stats(store)["nobid:blocked"] == 2


def test_floors_in_any_currency_and_the_answers_currency(bidder_url, store):
    publish(store, line_item())
    request = example("simple_banner")
    request["imp"][0]["bidfloor"] = 3.0  # USD: 2.50 EUR is 2.78 USD
    assert post(bidder_url, request).status_code == 204
    request["imp"][0].update(bidfloor=2.4, bidfloorcur="EUR")
    request["cur"] = ["EUR", "USD"]
    r = post(bidder_url, request)
    assert r.status_code == 200 and r.json()["cur"] == "EUR" and r.json()["seatbid"][0]["bid"][0]["price"] == 2.5
    request["imp"][0].update(bidfloor=1.0, bidfloorcur="JPY")  # not in the currency table
    assert post(bidder_url, request).status_code == 204
    assert stats(store)["nobid:floor"] == 1 and stats(store)["nobid:currency"] == 1


def test_no_answer_later_than_tmax_less_the_network_margin(bidder_url, store):
    publish(store, line_item())
    request = example("simple_banner")
    request["tmax"] = 15  # the margin is 20 ms: no time left
    assert post(bidder_url, request).status_code == 204
    request["tmax"] = 500
    assert post(bidder_url, request).status_code == 200
    assert stats(store)["late"] == 1


def test_geography_and_schedule(bidder_url, store):
    import time

    paris = {"countries": [], "regions": [], "cities": [], "circles": [[48.8566, 2.3522, 30]]}
    publish(store, line_item(area=paris))
    request = example("simple_banner")
    request["device"] = {"geo": {"lat": 48.9, "lon": 2.4, "country": "FRA"}}
    assert post(bidder_url, request).status_code == 200
    request["device"] = {"geo": {"lat": 45.76, "lon": 4.84, "country": "FRA"}}  # Lyon
    assert post(bidder_url, request).status_code == 204
    publish(store, line_item(area={"countries": ["FRA"], "regions": [], "cities": [], "circles": []}))
    assert post(bidder_url, request).status_code == 200
    publish(store, line_item(starts=time.time() + 3600))  # not started: a cancelled or paused one is not published
    assert post(bidder_url, request).status_code == 204
    assert stats(store)["nobid:geo"] == 1 and stats(store)["nobid:schedule"] == 1


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"id": "x"}',
        b'{"id": "x", "imp": []}',
        b'{"id": "x", "imp": {}}',
        b'{"id": "", "imp": [{"id": "1", "banner": {"w": 300, "h": 250}}]}',
        b'{"id": 5, "imp": [{"id": "1"}]}',
        b'{"id": "x", "imp": [{"id": "1", "banner": {"w": "300", "h": 250}}]}',
        b'{"id": "x", "imp": [{"id": "1", "bidfloor": -1}]}',
        b'{"id": "x", "imp": [{"id": "1", "bidfloor": 1e400}]}',
        b'{"id": "x", "imp": [{"id": "1", "bidfloorcur": "EURO"}]}',
        b'{"id": "x", "imp": [{"id": "1"}, {"id": "1"}]}',
        b'{"id": "x", "imp": [{"id": "1"}], "site": {}, "app": {}}',
        b'{"id": "x", "imp": [{"id": "1"}], "device": {"geo": {"lat": 91}}}',
        b'{"id": "x", "imp": [{"id": "1"}], "at": 0}',
        b'{"id": "x", "imp": [{"id": "1"}], "tmax": true}',
        b'{"id": "x", "imp": [{"id": "1"}], "cur": "USD"}',
        b'{"id": "x\\u0000", "imp": [{"id": "1"}]}',
        b'{"id": "x", "imp": [{"id": "1"}], "user": {"eids": [{"uids": "a"}]}}',
        b'{"id": "x", "imp": [{"id": "1"}], "regs": {"gdpr": 2}}',
        b'{"id": "x", "imp": [' + b",".join(b'{"id": "%d"}' % i for i in range(21)) + b"]}",
        b'{"id": "x", "imp": [{"id": "1", "banner": ' + b"[" * 5000 + b"]" * 5000 + b"}]}",
    ],
)
def test_a_malformed_request_is_a_400_with_an_empty_body(bidder_url, store, body):
    publish(store, line_item())
    r = post(bidder_url, body)
    assert r.status_code == 400 and r.content == b"", (body[:80], r.status_code, r.content)


def test_what_is_not_a_bid_request(bidder_url, store):
    publish(store, line_item())
    assert requests.get(f"{bidder_url}/openrtb2/{SLUG}", timeout=5).status_code == 405
    assert post(bidder_url, b"{" + b" " * (300 * 1024) + b"}").status_code == 413
    assert requests.post(f"{bidder_url}/openrtb2/nobody", data=b"{}", timeout=5).status_code == 404
    assert requests.get(f"{bidder_url}/elsewhere", timeout=5).status_code == 404
