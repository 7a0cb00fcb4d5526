"""Who is bid on (identity, consent, TCF, audiences) and what is spent (notices counted once,
caps, budgets), against a real bidder process and a real Redis."""

import hashlib
from concurrent.futures import ThreadPoolExecutor

import orjson
import pytest
import requests
from iab_tcf import decode_v2

from bidder import tcf
from programmatic import state as keys
from tests.bidder.conftest import SLUG, WORKSPACE, line_item, publish
from tests.bidder.test_openrtb import example, post, stats, today

pytestmark = pytest.mark.postgres

ANNA = 501
ANNA_EMAIL_SHA256 = hashlib.sha256(b"anna@example.org").hexdigest()
# TCF strings the IAB's own library (iabtcf-es) is tested with.
ALL_TEN_PURPOSES = (
    "COxR03kOxR1CqBcABCENAgCMAP_AAH_AAAqIF3EXySoGY2thI2YVFxBEIYwfJxyigMgChgQIsSwNQIeFLBoGLiAAHBGYJAQAGBAEEACBAQIkHGBMCQ"
    "AAgAgBiRCMQEGMCzNIBIBAggEbY0FACCVmHkHSmZCY7064O__QLuIJEFQMAkSBAIACLECIQwAQDiAAAYAl"
)
RANGES = "CQd924AQd924AASACCENCNFsAP_gAEIAACiQL6QBAAGAAOANmAcAF9IAIADgAA.IL6AAAA.YIAAAAAAAAAA"
NO_PURPOSES = "CO5dPi4O5dPx2B7DvCENA2CgAAAAAAAAAAAAGewAAM8gAAAA.YAAAAAAAAAAA"
RESTRICTIONS = (
    "CO4VGswO4VGswAfZCBDEAzCsAP_AAH_AAAigGUNf_X9fb2vj-_599_t0eY1f9_63t-wzjheMs-8NyZ-X_J4Wv2MyvB34JqQKGRgkunLBAQdtHGncTQ"
    "gBwIlViTLMY02MjzNKJrJEilsbe2dYGH9vn8XT_ZKZ70-_v__7v3___33_5Ayhr_6_r7e18f3_Pvv9ujzGr_v_W9v2GccLxln3huTPy_5PC1-xmV4"
    "O_BNSBQyMEl05YICDto407iaEAOBEqsSZZjGmxkeZpRNZIkUtjb2zrAw_t8_i6f7JTPen39___d-___--__ICgKAOAAcAA4AFAAjgB6AEYALcGACAW"
    "0AtoJAHAAOAAcACgARwA9ACMAFuFABALaAW0GgDgAHAAOABQAI4AegBGAC3DgAgFtALaEQBwADgAHAAoAEcAPQAjABbiQAQC2gFtCoA4ABwADgAU"
    "ACOAHoARgAtxYAIBbQC2hkAcAA4ABwAKABHAD0AIwAW40AEAtoBbQ6AOAAcAA4AFAAjgB6AEYALceACAW0AtohAHAAOAAcACgARwA9ACMAFuRABA"
    "LaAW0SgDgAHAAOABQAI4AegBGAC3JgAgFtALaKQBwADgAHAAoAEcAPQAjABblQAQC2gFtA"
)


@pytest.mark.parametrize("string", [ALL_TEN_PURPOSES, RANGES, NO_PURPOSES, RESTRICTIONS])
def test_the_tcf_decoder_agrees_with_an_independent_one(string):
    ours, theirs = tcf.decode(string), decode_v2(string)
    assert (ours.version, ours.cmp_id, ours.vendor_list_version) == (2, theirs.cmp_id, theirs.vendor_list_version)
    assert ours.purposes == {p for p, on in theirs.purposes_consent.items() if on}
    vendors = range(1, theirs.max_consent_vendor_id + 1)
    assert {v for v in vendors if ours.has_vendor(v)} == {v for v in vendors if theirs.is_vendor_allowed(v)}


def test_what_is_not_a_tcf_v2_string_grants_nothing():
    for bad in (
        "",
        "x",
        "!!!!",
        "BOhwdphOxFC7tAHABBFRC--AAAAuhr_7__7-_9_-_f__9uj3Or_v_f__32ccL59v_h_7v-_7fi_20n",
        "C" * 9000,
    ):
        with pytest.raises(tcf.TcfError):
            tcf.decode(bad)
    # Cut in the middle of its vendors' bit field: it ends before its maximum vendor id.
    with pytest.raises(tcf.TcfError, match="ends early"):
        tcf.decode(ALL_TEN_PURPOSES[:60])


def audience_line(version: int = 1, **overrides) -> dict:
    return line_item(members={"version": version}, **overrides)


def known(store, *, consented=True, member=True, version=1) -> None:
    store.set(keys.identity_key(WORKSPACE, "buyer", "anna-uid"), ANNA)
    store.set(keys.identity_key(WORKSPACE, "email_sha256", ANNA_EMAIL_SHA256), ANNA)
    store.set(keys.identity_key(WORKSPACE, "device", "aa000dfe74168477c70d291f574d344790e0bb11"), ANNA)
    if consented:
        store.sadd(keys.consent_key(WORKSPACE), ANNA)
    if member:
        store.sadd(keys.members_key(WORKSPACE, 11, version), ANNA)


def anna_request(**user) -> dict:
    request = example("simple_banner")
    request["user"] = {"id": "exchange-user-1", "buyeruid": "anna-uid", **user}
    return request


def test_a_person_is_recognised_by_buyer_id_hashed_email_or_device(bidder_url, store):
    publish(store, audience_line())
    known(store)
    assert post(bidder_url, anna_request()).status_code == 200
    by_email = example("simple_banner")
    by_email["user"] = {"eids": [{"source": "liveramp.com", "uids": [{"id": ANNA_EMAIL_SHA256.upper(), "atype": 3}]}]}
    assert post(bidder_url, by_email).status_code == 200
    mobile = example("mobile")
    mobile["imp"][0]["bidfloor"] = 0.1
    mobile["badv"] = []
    assert post(bidder_url, mobile).status_code == 200  # device.ifa, upper case in the request
    stranger = example("simple_banner")
    stranger["user"] = {"buyeruid": "someone-else"}
    assert post(bidder_url, stranger).status_code == 204
    assert stats(store)["nobid:unknown_person"] == 1


def test_no_bid_without_consent_nor_outside_the_audience(bidder_url, store):
    publish(store, audience_line())
    known(store, consented=False)
    assert post(bidder_url, anna_request()).status_code == 204
    # Not even a line item without an audience: a known person without a grant is not bid on.
    publish(store, line_item())
    assert post(bidder_url, anna_request()).status_code == 204
    assert stats(store)["nobid:no_consent"] == 2
    publish(store, audience_line())
    store.sadd(keys.consent_key(WORKSPACE), ANNA)
    store.srem(keys.members_key(WORKSPACE, 11, 1), ANNA)
    assert post(bidder_url, anna_request()).status_code == 204
    assert stats(store)["nobid:audience"] == 1
    # A new audience version switches at once with the state that names it.
    store.sadd(keys.members_key(WORKSPACE, 11, 2), ANNA)
    publish(store, audience_line(version=2))
    assert post(bidder_url, anna_request()).status_code == 200
    # A withdrawal is one SREM: the next request sees it.
    store.srem(keys.consent_key(WORKSPACE), ANNA)
    assert post(bidder_url, anna_request()).status_code == 204


def test_under_gdpr_the_tcf_string_must_grant_personalised_ads(bidder_url, store):
    publish(store, audience_line())
    known(store)
    request = anna_request(consent=ALL_TEN_PURPOSES)
    request["regs"] = {"gdpr": 1}
    assert post(bidder_url, request).status_code == 200
    for refused in (NO_PURPOSES, "not-a-string", ""):
        request["user"]["consent"] = refused
        assert post(bidder_url, request).status_code == 204
    request["user"].pop("consent")
    request["user"]["ext"] = {"consent": ALL_TEN_PURPOSES}  # the 2.5 place of the string
    request["regs"] = {"ext": {"gdpr": 1}}
    assert post(bidder_url, request).status_code == 200
    assert stats(store)["nobid:tcf"] == 3


def test_the_bid_price_follows_the_persons_value_within_bounds(bidder_url, store):
    publish(store, audience_line(value_model=4), rates={"EUR": 1.0, "USD": 1.0})
    known(store)
    request = anna_request()
    request["cur"] = ["EUR"]
    store.hset(keys.value_key(WORKSPACE, 4), ANNA, 0.9)
    assert post(bidder_url, request).json()["seatbid"][0]["bid"][0]["price"] == pytest.approx(4.5)  # 2.5 x 0.9/0.5
    store.hset(keys.value_key(WORKSPACE, 4), ANNA, 0.99)
    assert post(bidder_url, request).json()["seatbid"][0]["bid"][0]["price"] == pytest.approx(4.95)
    store.hset(keys.value_key(WORKSPACE, 4), ANNA, 0.1)
    assert post(bidder_url, request).json()["seatbid"][0]["bid"][0]["price"] == 1.0  # the minimum


def notice(url: str, bid: dict, kind: str, price) -> int:
    target = bid[{"win": "nurl", "bill": "burl", "loss": "lurl"}[kind]]
    target = target.replace("${AUCTION_PRICE}", str(price)).replace("${AUCTION_LOSS}", "102")
    return requests.get(target, timeout=5).status_code


def test_notices_count_once_and_spend_comes_from_billing_only(bidder_url, store):
    publish(store, line_item(), rates={"EUR": 1.0, "USD": 0.9})
    bid = post(bidder_url, example("simple_banner")).json()["seatbid"][0]["bid"][0]
    assert notice(bidder_url, bid, "win", 2.0) == 204
    assert store.get(keys.spent_key(WORKSPACE, 3)) is None  # a win is not spend
    # An exchange retrying the billing notice, ten times at once: counted once.
    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(lambda _: notice(bidder_url, bid, "bill", 2.0), range(10)))
    assert codes == [204] * 10
    assert int(store.get(keys.spent_key(WORKSPACE, 3))) == 1_800_000  # 2.00 USD CPM = 0.0018 EUR, in nanos
    counted = stats(store)
    assert (counted["11:win"], counted["11:imp"], counted["11:spend"]) == (1, 1, 1_800_000)
    entries = store.xrange(keys.notices_key(WORKSPACE))
    assert [e[1][b"kind"] for e in entries] == [b"win", b"bill"]
    assert entries[1][1][b"nanos"] == b"1800000" and entries[1][1][b"price"] == b"2.0"
    # A price above the bid, or no price, is refused; an unknown bid is not found.
    other = post(bidder_url, example("simple_banner")).json()["seatbid"][0]["bid"][0]
    assert notice(bidder_url, other, "bill", 99) == 400
    assert notice(bidder_url, other, "bill", "${AUCTION_PRICE}") == 400
    assert requests.get(f"{bidder_url}/notice/{SLUG}/bill/deadbeef?price=1", timeout=5).status_code == 404
    # A loss keeps its reason.
    assert notice(bidder_url, other, "loss", "") == 204
    assert stats(store)["loss:102"] == 1


def test_a_test_request_is_not_billed(bidder_url, store):
    publish(store, line_item())
    request = example("simple_banner")
    request["test"] = 1
    bid = post(bidder_url, request).json()["seatbid"][0]["bid"][0]
    assert notice(bidder_url, bid, "bill", 1.0) == 204
    assert store.get(keys.spent_key(WORKSPACE, 3)) is None and stats(store)["11:imp"] == 1


def test_frequency_caps_count_impressions(bidder_url, store):
    publish(store, audience_line(cap={"max": 2, "seconds": 3600}))
    known(store)
    for _ in range(2):
        bid = post(bidder_url, anna_request()).json()["seatbid"][0]["bid"][0]
        assert notice(bidder_url, bid, "bill", 1.0) == 204
    assert post(bidder_url, anna_request()).status_code == 204
    assert stats(store)["nobid:cap"] == 1


def test_budgets_hold_total_and_daily(bidder_url, store):
    # 0.0025 EUR an impression at 2.50 EUR CPM: room for two impressions in the total.
    publish(
        store,
        line_item(),
        campaigns={"3": {"total": 5_000_000, "daily": None, "pacing": "asap"}},
        rates={"EUR": 1.0, "USD": 1.0},
    )
    request = example("simple_banner")
    request["cur"] = ["EUR"]
    for _ in range(2):
        bid = post(bidder_url, request).json()["seatbid"][0]["bid"][0]
        assert notice(bidder_url, bid, "bill", 2.5) == 204
    assert post(bidder_url, request).status_code == 204
    assert int(store.get(keys.spent_key(WORKSPACE, 3))) == 5_000_000 and stats(store)["nobid:budget"] == 1
    # Even pacing: nothing yet spent today may go; a day already spent up to its plan may not.
    day = today()
    publish(store, line_item(), campaigns={"3": {"total": None, "daily": 10**12, "pacing": "even"}})
    assert post(bidder_url, request).status_code == 200
    store.set(keys.spent_key(WORKSPACE, 3, day), 10**12 - 3_000_000)
    assert post(bidder_url, request).status_code == 204
    assert stats(store)["nobid:pacing"] + stats(store)["nobid:budget"] == 2


def test_cookie_sync_then_a_bid_on_the_exchanges_user_id(bidder_url, store):
    publish(store, audience_line())
    known(store)
    r = requests.get(f"{bidder_url}/sync/{SLUG}", params={"exchange": "adx", "uid": "x-42"}, timeout=5)
    assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
    ours = r.cookies["cible_uid"]
    assert store.get(keys.sync_key(WORKSPACE, "adx", "x-42")).decode() == ours
    # Cible knows its browser id as Anna's (a cookie identity, published by programmatic).
    store.set(keys.identity_key(WORKSPACE, "buyer", ours), ANNA)
    request = example("simple_banner")
    request["user"] = {"id": "x-42"}
    assert post(bidder_url, request, exchange="adx").status_code == 200
    # Synced again with its cookie: the same id, no new cookie.
    again = requests.get(
        f"{bidder_url}/sync/{SLUG}", params={"exchange": "adx", "uid": "x-43"}, cookies={"cible_uid": ours}, timeout=5
    )
    assert "cible_uid" not in again.cookies and store.get(keys.sync_key(WORKSPACE, "adx", "x-43")).decode() == ours
    assert requests.get(f"{bidder_url}/sync/{SLUG}", params={"exchange": "adx"}, timeout=5).status_code == 400


def test_the_state_is_read_again_when_its_version_moves(bidder_url, store):
    publish(store, line_item())
    assert post(bidder_url, example("simple_banner")).status_code == 200
    # The campaign is paused: the publisher leaves its line items out.
    publish(store)
    assert post(bidder_url, example("simple_banner")).status_code == 204
    assert orjson.loads(store.get(keys.state_key(WORKSPACE)))["lines"] == []
