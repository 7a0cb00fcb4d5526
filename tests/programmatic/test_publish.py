"""From a Cible campaign to the bidder's answers: a display campaign on a segment is published
to Redis and bid on by a real bidder process; pausing, consent withdrawal and erasure stop its
bids at once."""

import hashlib
from decimal import Decimal

import orjson
import pytest
import requests

from campaigns.models import Campaign
from campaigns.services.lifecycle import campaign_transition
from customers.models import Identity
from privacy.consent import consent_withdraw
from programmatic import state as keys
from programmatic.models import Creative, LineItem
from programmatic.publish import state_publish
from tests.bidder.conftest import REDIS_URL
from tests.bidder.test_openrtb import example
from tests.factories import make_consent, make_profile, make_running_campaign

pytestmark = pytest.mark.postgres


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def display(workspace, store, settings):
    """Anna (in the segment, consenting to ad targeting on display), Bob (in the segment, no grant),
    Carl (consenting, not in the segment); an active display campaign on the segment."""
    settings.BIDDER_REDIS_URL = REDIS_URL
    people = {}
    for name, city, consents in (("anna", "Paris", True), ("bob", "Paris", False), ("carl", "Lyon", True)):
        profile = make_profile(workspace=workspace, external_id=name, city=city, email=f"{name}@example.org")
        Identity.objects.create(workspace=workspace, profile=profile, type="email", value=f"{name}@example.org")
        if consents:
            make_consent(profile=profile, purpose="ad_targeting", channel="display")
        people[name] = profile
    campaign = make_running_campaign(workspace=workspace, channels=("display",), budget_total=Decimal("100.00"))
    target = campaign.targets.get()
    from segments.services import segment_update

    segment_update(segment=target.segment, definition={"field": "city", "op": "eq", "value": "Paris"})
    from audiences.services import audience_compute

    audience_compute(segment_id=target.segment_id)
    creative = Creative.objects.create(
        workspace=workspace,
        name="Soldes 300x250",
        width=300,
        height=250,
        markup='<a href="{{landing_url}}"><img src="https://maison.example/soldes.png"></a>',
        landing_url="https://maison.example/soldes",
        advertiser_domain="maison.example",
        categories=["IAB22"],
    )
    line = LineItem.objects.create(target=target, base_cpm=Decimal("2.5"), min_cpm=Decimal(1), max_cpm=Decimal(6))
    line.creatives.add(creative)
    return campaign, line, people


def request_for(name: str) -> dict:
    request = example("simple_banner")
    request["cur"] = ["EUR"]
    request["user"] = {"eids": [{"source": "id5-sync.com", "uids": [{"id": sha256(f"{name}@example.org")}]}]}
    return request


def post(url: str, body: dict) -> requests.Response:
    return requests.post(f"{url}/openrtb2/maison", data=orjson.dumps(body), timeout=5)


def test_a_display_campaign_on_a_segment_bids_on_consenting_members_only(display, bidder_url, store, workspace):
    campaign, line, people = display
    published = state_publish(workspace=workspace, redis_client=store)
    assert published == {"lines": 1, "consented": 2, "identities": 2, "members": 1}
    r = post(bidder_url, request_for("anna"))
    assert r.status_code == 200, r.content
    bid = r.json()["seatbid"][0]["bid"][0]
    assert bid["price"] == 2.5 and bid["cid"] == str(campaign.pk) and bid["adomain"] == ["maison.example"]
    assert 'href="https://maison.example/soldes"' in bid["adm"]
    assert post(bidder_url, request_for("bob")).status_code == 204  # no grant: not even recognised
    assert post(bidder_url, request_for("carl")).status_code == 204  # not in the segment
    state = orjson.loads(store.get(keys.state_key(workspace.pk)))
    assert state["campaigns"][str(campaign.pk)]["total"] == 100 * keys.NANOS
    # Identifiers of people who may not be targeted are not published.
    assert store.get(keys.identity_key(workspace.pk, "email_sha256", sha256("bob@example.org"))) is None


def test_pausing_stops_bids_at_once_and_resuming_brings_them_back(
    display, bidder_url, store, workspace, django_capture_on_commit_callbacks
):
    campaign, line, people = display
    state_publish(workspace=workspace, redis_client=store)
    assert post(bidder_url, request_for("anna")).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        campaign_transition(campaign=campaign, to=Campaign.Status.PAUSED, reason="creative review")
    assert post(bidder_url, request_for("anna")).status_code == 204
    with django_capture_on_commit_callbacks(execute=True):
        campaign_transition(campaign=campaign, to=Campaign.Status.ACTIVE)
    state_publish(workspace=workspace, redis_client=store)  # what the task queued on activation does
    assert post(bidder_url, request_for("anna")).status_code == 200


def test_a_withdrawal_or_an_erasure_stops_bids_at_once(display, bidder_url, store, workspace):
    campaign, line, people = display
    state_publish(workspace=workspace, redis_client=store)
    assert post(bidder_url, request_for("anna")).status_code == 200
    consent_withdraw(profile=people["anna"], purposes=["ad_targeting"], channels=["display"])
    assert post(bidder_url, request_for("anna")).status_code == 204
    # Published again, she stays out: the consent set is rebuilt from the consent history.
    state_publish(workspace=workspace, redis_client=store)
    assert post(bidder_url, request_for("anna")).status_code == 204
    assert not store.sismember(keys.consent_key(workspace.pk), people["anna"].pk)


def test_notices_reach_the_bid_days_and_the_ledger_exactly_once(display, bidder_url, store, workspace):
    from concurrent.futures import ThreadPoolExecutor

    from campaigns.models import LedgerEntry
    from programmatic.models import BidDay, BidderDay
    from programmatic.notices import notices_consume

    campaign, line, people = display
    state_publish(workspace=workspace, redis_client=store)
    bids = [post(bidder_url, request_for("anna")).json()["seatbid"][0]["bid"][0] for _ in range(40)]

    def notify(bid, kind, price):
        url = bid[{"win": "nurl", "bill": "burl", "loss": "lurl"}[kind]]
        return requests.get(url.replace("${AUCTION_PRICE}", price).replace("${AUCTION_LOSS}", "2"), timeout=5)

    # 30 wins billed at 2.4999 EUR CPM (each notice sent twice, at once), 10 losses.
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda b: notify(b, "win", "2.4999").status_code, bids[:30]))
        codes += list(pool.map(lambda b: notify(b, "bill", "2.4999").status_code, bids[:30] * 2))
        codes += list(pool.map(lambda b: notify(b, "loss", "").status_code, bids[30:]))
    assert set(codes) == {204}
    first = notices_consume(workspace_id=workspace.pk, redis_client=store)
    again = notices_consume(workspace_id=workspace.pk, redis_client=store)
    assert first == {"notices": 70, "ledger_entries": 1} and again == {"notices": 0, "ledger_entries": 0}
    day = BidDay.objects.get(line_item=line)
    assert (day.bids, day.wins, day.impressions, day.losses, day.spend_nanos) == (40, 30, 30, 10, 30 * 2_499_900)
    requests_day = BidderDay.objects.get(workspace=workspace)
    assert (requests_day.requests, requests_day.bid_requests, requests_day.no_bid) == (40, 40, {})
    entry = LedgerEntry.objects.get(campaign=campaign, source="programmatic")
    # 30 impressions at 2.4999 EUR a thousand: 0.074997 EUR, recorded to the cent below.
    assert entry.amount == Decimal("0.07") and entry.channel == "display" and entry.target_id == line.target_id
    campaign.refresh_from_db()
    assert campaign.spent == Decimal("0.07")
    # More billing: only the cents not yet in the ledger are added.
    more = [post(bidder_url, request_for("anna")).json()["seatbid"][0]["bid"][0] for _ in range(10)]
    for bid in more:
        assert notify(bid, "bill", "2.5").status_code == 204
    assert notices_consume(workspace_id=workspace.pk, redis_client=store) == {"notices": 10, "ledger_entries": 1}
    total = LedgerEntry.objects.filter(campaign=campaign, source="programmatic").values_list("amount", flat=True)
    assert sum(total) == Decimal("0.09")  # 0.074997 + 0.025 = 0.099997, to the cent below


def test_a_merge_and_an_unmerge_reach_the_bidders_identity_map_at_once(
    display, bidder_url, store, workspace, django_capture_on_commit_callbacks
):
    """A cookie seen anonymously, then with Anna's login: the bidder knows it as Anna at once, the
    anonymous profile leaves its state; split back, the cookie is the anonymous person's again."""
    from customers.ingestion import INGESTERS
    from customers.models import Profile, ProfileMerge
    from customers.services import profile_unmerge

    campaign, line, people = display
    state_publish(workspace=workspace, redis_client=store)
    event = {"type": "page_view", "channel": "web", "occurred_at": "2026-12-01T10:00:00+00:00"}
    cookie = [{"type": "cookie", "value": "buyer-7"}]
    INGESTERS["events"](workspace=workspace, items=[{"idempotency_key": "a", **event, "identities": cookie}])
    anonymous = Profile.objects.get(anonymous=True)
    make_consent(profile=anonymous, purpose="ad_targeting", channel="display")
    state_publish(workspace=workspace, redis_client=store)
    cookie_key = keys.identity_key(workspace.pk, "buyer", "buyer-7")
    assert store.get(cookie_key) == str(anonymous.pk).encode()

    with django_capture_on_commit_callbacks(execute=True):
        INGESTERS["events"](
            workspace=workspace, items=[{"idempotency_key": "b", **event, "external_id": "anna", "identities": cookie}]
        )
    assert store.get(cookie_key) == str(people["anna"].pk).encode()
    assert not store.sismember(keys.consent_key(workspace.pk), anonymous.pk)
    request = example("simple_banner")
    request["cur"] = ["EUR"]
    request["user"] = {"buyeruid": "buyer-7"}
    assert post(bidder_url, request).status_code == 200  # recognised as Anna, a member of the segment

    with django_capture_on_commit_callbacks(execute=True):
        profile_unmerge(merge=ProfileMerge.objects.get(merged_profile_id=anonymous.pk))
    assert store.get(cookie_key) == str(anonymous.pk).encode()
    assert store.sismember(keys.consent_key(workspace.pk), anonymous.pk)
    assert post(bidder_url, request).status_code == 204  # the anonymous person is not in the segment
