"""Retargeting on display: someone abandons a cart and, at their next page on a site the exchange
sells, sees an ad naming that product with the campaign's offer. A real bidder process bids from
what Django published; new events reach it without waiting for the next publish, a purchase
takes the person out, and an erasure leaves nothing of them in the bidder's Redis."""

import hashlib
from datetime import timedelta
from decimal import Decimal

import orjson
import pytest
import requests
from django.utils import timezone

from campaigns.models import Campaign
from customers.ingestion import events_ingest
from customers.models import Identity
from privacy.erasure import profiles_erase
from programmatic import state as keys
from programmatic.models import Creative, LineItem
from programmatic.publish import state_publish
from tests.bidder.conftest import REDIS_URL
from tests.bidder.test_openrtb import example
from tests.factories import make_campaign, make_consent, make_event, make_order, make_profile

pytestmark = pytest.mark.postgres

MARKUP = (
    '<a href="{{click_url}}"><img src="{{product_image}}" alt="{{product}}">'
    "{{product}}, {{product_price}} EUR: -{{discount_percent}}% with {{discount_code}}</a>"
    '<a href="{{product_url}}">{{sku}}</a>'
)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def cart(workspace, store, settings):
    """A display campaign on carts abandoned (an hour's delay, then 48 hours), with a 10% offer."""
    settings.BIDDER_REDIS_URL = REDIS_URL
    campaign = make_campaign(
        workspace=workspace,
        channels=("display",),
        budget_total=Decimal("50.00"),
        targets=[
            {
                "segment": None,
                "trigger_event": "cart_abandoned",
                "trigger_delay": timedelta(hours=1),
                "variant": "cart-10",
                "discount_code": "CART10",
                "discount_percent": "10",
            }
        ],
    )
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ACTIVE)
    creative = Creative.objects.create(
        workspace=workspace,
        name="Panier 300x250",
        width=300,
        height=250,
        markup=MARKUP,
        landing_url="https://maison.example/panier?from=ad",
        advertiser_domain="maison.example",
    )
    line = LineItem(target=campaign.targets.get(), base_cpm=Decimal("3"), min_cpm=Decimal(1), max_cpm=Decimal(6))
    line.trigger_hours = 48
    line.full_clean()
    line.save()
    line.creatives.add(creative)
    return campaign, line


def shopper(workspace, name: str, consents: bool = True):
    profile = make_profile(workspace=workspace, external_id=name, email=f"{name}@example.org")
    Identity.objects.create(workspace=workspace, profile=profile, type="email", value=f"{name}@example.org")
    if consents:
        make_consent(profile=profile, purpose="ad_targeting", channel="display")
    return profile


def abandon(profile, hours_ago: float, **properties):
    properties = {"sku": "SKU-ROB-041", "name": "Robe en lin", "price": 89.9, **properties}
    return make_event(
        profile=profile,
        type="cart_abandoned",
        occurred_at=timezone.now() - timedelta(hours=hours_ago),
        properties=properties,
    )


def redis_bytes(store):
    """Every key of the database and everything in it, whatever its type."""
    for key in store.scan_iter(count=1000):
        yield key
        kind = store.type(key)
        if kind == b"string":
            yield store.get(key)
        elif kind == b"hash":
            yield from (k + b"=" + v for k, v in store.hgetall(key).items())
        elif kind == b"set":
            yield from store.smembers(key)
        elif kind == b"stream":
            yield from (b"".join(k + v for k, v in fields.items()) for _, fields in store.xrange(key))
        else:
            raise AssertionError(f"a key of a type this test does not read: {key!r} ({kind!r})")


def bid_for(url: str, name: str) -> requests.Response:
    request = example("simple_banner")
    request["cur"] = ["EUR"]
    request["user"] = {"eids": [{"source": "id5-sync.com", "uids": [{"id": sha256(f"{name}@example.org")}]}]}
    return requests.post(f"{url}/openrtb2/maison", data=orjson.dumps(request), timeout=5)


def test_the_ad_names_the_abandoned_product_with_the_offer_within_the_window(cart, bidder_url, store, workspace):
    campaign, line = cart
    anna, bob, carl, dora = (shopper(workspace, n) for n in ("anna", "bob", "carl", "dora"))
    eve = shopper(workspace, "eve", consents=False)
    abandon(anna, 30, sku="SKU-OLD", name="Old hat")  # an older cart: the latest one counts
    abandon(anna, 2, name='Robe <b>"lin"</b>', image="https://maison.example/robe.png", url="javascript:alert(1)")
    abandon(bob, 0.25)  # within the hour's delay: not yet
    abandon(carl, 50)  # 50 hours ago: past the delay and 48 hours
    abandon(dora, 3)
    make_order(profile=dora, ordered_at=timezone.now() - timedelta(hours=1))  # she bought since
    abandon(eve, 2)  # no grant for ad targeting on display
    state_publish(workspace=workspace, redis_client=store)

    r = bid_for(bidder_url, "anna")
    assert r.status_code == 200, r.content
    bid = r.json()["seatbid"][0]["bid"][0]
    assert bid["price"] == 3.0 and bid["cid"] == str(campaign.pk)
    adm = bid["adm"]
    # The product's name is escaped: an event's properties never inject markup into the page.
    assert "Robe &lt;b&gt;&quot;lin&quot;&lt;/b&gt;, 89.9 EUR: -10% with CART10" in adm
    assert 'src="https://maison.example/robe.png"' in adm and "<b>" not in adm
    # A link that is not http(s) would run in the exchange's page: it is left out.
    assert "javascript" not in adm and '<a href="">SKU-ROB-041</a>' in adm
    assert f"utm_campaign={campaign.pk}" in adm and "from=ad&amp;utm_source=cible" in adm
    for name in ("bob", "carl", "dora", "eve"):
        assert bid_for(bidder_url, name).status_code == 204, name
    stats = store.hgetall(keys.stats_key(workspace.pk, timezone.localdate().strftime("%Y%m%d")))
    reasons = {k.decode(): int(v) for k, v in stats.items() if k.startswith(b"nobid:")}
    assert reasons.get("nobid:trigger", 0) + reasons.get("nobid:unknown_person", 0) == 4


def test_a_new_cart_reaches_the_bidder_without_a_publish_and_a_purchase_ends_it(
    cart, bidder_url, store, workspace, django_capture_on_commit_callbacks, eager_tasks
):
    campaign, line = cart
    bob = shopper(workspace, "bob")
    state_publish(workspace=workspace, redis_client=store)
    assert bid_for(bidder_url, "bob").status_code == 204
    item = {
        "external_id": "bob",
        "idempotency_key": "cart-1",
        "type": "cart_abandoned",
        "channel": "web",
        "occurred_at": (timezone.now() - timedelta(hours=2)).isoformat(),
        "properties": {"sku": "SKU-SAC-007", "name": "Sac cabas", "price": 45},
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert events_ingest(workspace=workspace, items=[item]).created == 1
    r = bid_for(bidder_url, "bob")
    assert r.status_code == 200, r.content
    assert "Sac cabas, 45 EUR" in r.json()["seatbid"][0]["bid"][0]["adm"]
    purchase = {**item, "type": "purchase", "idempotency_key": "buy-1", "occurred_at": timezone.now().isoformat()}
    with django_capture_on_commit_callbacks(execute=True):
        assert events_ingest(workspace=workspace, items=[purchase]).created == 1
    assert bid_for(bidder_url, "bob").status_code == 204
    assert not store.hexists(keys.trigger_key(workspace.pk, line.pk), bob.pk)


def test_an_erasure_leaves_nothing_of_the_person_in_the_bidders_redis(cart, bidder_url, store, workspace):
    campaign, line = cart
    anna = shopper(workspace, "anna")
    Identity.objects.create(workspace=workspace, profile=anna, type="device", value="AAAA-BBBB-CCCC")
    abandon(anna, 2, name="Robe en lin")
    state_publish(workspace=workspace, redis_client=store)
    assert bid_for(bidder_url, "anna").status_code == 200
    profiles_erase(workspace_id=workspace.pk, profile_ids=[anna.pk])
    assert bid_for(bidder_url, "anna").status_code == 204
    everything = b"\n".join(redis_bytes(store))
    for trace in (sha256("anna@example.org").encode(), b"aaaa-bbbb-cccc", b"Robe en lin"):
        assert trace not in everything
    assert not store.sismember(keys.consent_key(workspace.pk), anna.pk)
