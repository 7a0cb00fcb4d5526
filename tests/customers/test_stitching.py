"""Omnichannel identity: anonymous ingestion, stitching at ingest by match rules, the household
cap, concurrent stitching, unmerge, and audiences that follow a merge at once."""

import threading

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from audiences.models import Audience, AudienceMember
from audiences.services import audience_compute
from customers.models import Event, Identity, MatchRule, Order, Profile, ProfileMerge
from customers.services import profile_unmerge
from customers.stitching import ANONYMOUS_PREFIX
from privacy.models import ConsentRecord
from tests.conftest import wait_for
from tests.factories import make_consent, make_profile, make_segment


def url(name, ws="maison"):
    return reverse(f"ingest-{name}", kwargs={"workspace": ws})


_serial = iter(range(10**9))


def event(*, external_id=None, identities=(), type="page_view", channel="web", **extra):
    item = {
        "idempotency_key": f"e{next(_serial)}",
        "type": type,
        "channel": channel,
        "occurred_at": timezone.now().isoformat(),
        **extra,
    }
    if external_id is not None:
        item["external_id"] = external_id
    if identities:
        item["identities"] = [{"type": kind, "value": value} for kind, value in identities]
    return item


def post(client, kind, items, **params):
    body = {"items": items, **({"create_missing": False} if params.get("strict") else {})}
    r = client.post(url(kind), body, format="json")
    assert r.status_code == 200, r.content
    return r.json()


def members(segment) -> set[int]:
    audience = Audience.objects.get(segment=segment)
    return set(AudienceMember.objects.current_of(audience).values_list("profile_id", flat=True))


def test_an_event_with_only_a_cookie_lands_on_one_anonymous_profile_that_segments_see(marketer, workspace):
    body = post(marketer, "events", [event(identities=[("cookie", "ck-A")], type="cart_abandoned") for _ in range(3)])
    assert (body["created"], body["profiles_created"], body["rejected"]) == (3, 1, [])
    person = Profile.objects.get(workspace=workspace)
    assert person.anonymous and person.external_id.startswith(ANONYMOUS_PREFIX)
    assert Event.objects.filter(profile=person).count() == 3
    identity = Identity.objects.get(profile=person)
    assert (identity.type, identity.value, identity.source) == ("cookie", "ck-A", "events")
    assert identity.last_seen_at is not None
    # Later traffic with the same cookie: the same person; a segment on the behaviour finds them.
    post(marketer, "events", [event(identities=[("cookie", "ck-A")])])
    assert Profile.objects.filter(workspace=workspace).count() == 1
    segment = make_segment(
        workspace=workspace, definition={"event": "cart_abandoned", "within": "P1D", "count": {"gte": 1}}
    )
    assert members(segment) == {person.pk}
    # An order with only a device id, from the app: another anonymous person.
    order = {
        "idempotency_key": "o1",
        "order_id": "A-1",
        "amount": "25.00",
        "ordered_at": timezone.now().isoformat(),
        "channel": "app",
        "identities": [{"type": "device", "value": "IDFA-1"}],
    }
    assert post(marketer, "orders", [order])["profiles_created"] == 1
    assert Order.objects.get(order_id="A-1").profile.anonymous


def test_an_item_naming_nobody_is_refused_with_its_reason(marketer, workspace):
    body = post(marketer, "events", [event(), event(identities=[("cookie", "")]), event(identities=[("fax", "1")])])
    codes = [sorted((f, e[0]["code"]) for f, e in r["errors"].items()) for r in body["rejected"]]
    assert codes == [
        [("external_id", "identity_required")],
        [("identities", "blank")],
        [("identities", "invalid_choice")],
    ]
    assert not Event.objects.exists() and not Profile.objects.exists()


def test_a_login_stitches_the_browsing_before_it_to_the_customer(marketer, workspace):
    customer = make_profile(workspace=workspace, external_id="C1", email="lea@example.com")
    post(marketer, "events", [event(identities=[("cookie", "ck-1")], type="product_view") for _ in range(2)])
    anonymous = Profile.objects.get(anonymous=True)
    make_consent(profile=anonymous, purpose="ad_targeting", channel="display")

    body = post(marketer, "events", [event(external_id="C1", identities=[("cookie", "ck-1")], type="app_open")])
    assert (body["created"], body["profiles_merged"]) == (1, 1)
    assert not Profile.objects.filter(pk=anonymous.pk).exists()
    assert Event.objects.filter(profile=customer).count() == 3
    assert ConsentRecord.objects.filter(profile=customer).count() == 1
    assert Identity.objects.get(value="ck-1").profile_id == customer.pk
    merge = ProfileMerge.objects.get(survivor=customer)
    assert (merge.reason, merge.rule_type, merge.source, merge.merged_profile_id) == (
        "rule",
        "cookie",
        "events",
        anonymous.pk,
    )
    assert merge.moved["events"] == 2 and merge.item_key
    # The anonymous id now resolves to the customer.
    post(marketer, "events", [event(external_id=anonymous.external_id)])
    assert Event.objects.filter(profile=customer).count() == 4


def test_a_new_external_id_sent_with_a_known_email_joins_that_person(marketer, workspace):
    known = make_profile(workspace=workspace, external_id="CRM-7")
    Identity.objects.create(workspace=workspace, profile=known, type="email", value="anne@example.com")
    body = post(
        marketer,
        "profiles",
        [{"idempotency_key": "p1", "external_id": "WEB-7", "email": "Anne@Example.com", "city": "Nantes"}],
    )
    assert (body["created"], body["updated"], body["profiles_merged"]) == (0, 1, 1)
    assert Profile.objects.filter(workspace=workspace).count() == 1
    known.refresh_from_db()
    assert (known.city, known.email) == ("Nantes", "anne@example.com")
    # Its events, under either id, reach the same person.
    post(marketer, "events", [event(external_id="WEB-7"), event(external_id="CRM-7")])
    assert Event.objects.filter(profile=known).count() == 2


def test_deterministic_keys_merge_known_people_and_the_best_identifier_survives(marketer, workspace):
    by_email = make_profile(workspace=workspace, external_id="SHOP-1", first_name="Paul")
    Identity.objects.create(workspace=workspace, profile=by_email, type="email", value="paul@example.com")
    by_card = make_profile(workspace=workspace, external_id="STORE-9", city="Lille")
    Identity.objects.create(workspace=workspace, profile=by_card, type="loyalty", value="CARD-123")
    order = {
        "idempotency_key": "o-1",
        "order_id": "T-1",
        "amount": "80.00",
        "ordered_at": timezone.now().isoformat(),
        "channel": "store",
        "identities": [{"type": "email", "value": "paul@example.com"}, {"type": "loyalty", "value": "CARD-123"}],
    }
    assert post(marketer, "orders", [order])["profiles_merged"] == 1
    survivor = Profile.objects.get(workspace=workspace)
    # The loyalty card ranks above the e-mail by default: its holder survives, with both histories.
    assert survivor.pk == by_card.pk
    assert (survivor.first_name, survivor.city, survivor.lifecycle_stage) == ("Paul", "Lille", "customer")
    assert Order.objects.get(order_id="T-1").profile_id == survivor.pk
    assert ProfileMerge.objects.get(survivor=survivor).rule_type == "loyalty"


def test_a_workspace_priority_decides_who_survives(marketer, workspace):
    MatchRule.objects.create(workspace=workspace, type="email", strength="deterministic", priority=500, max_profiles=5)
    a = make_profile(workspace=workspace, external_id="A")
    Identity.objects.create(workspace=workspace, profile=a, type="email", value="x@example.com")
    b = make_profile(workspace=workspace, external_id="B")
    Identity.objects.create(workspace=workspace, profile=b, type="loyalty", value="L-1")
    post(marketer, "events", [event(identities=[("loyalty", "L-1"), ("email", "x@example.com")])])
    assert list(Profile.objects.values_list("pk", flat=True)) == [a.pk]


def test_a_weak_identifier_never_fuses_two_known_people(marketer, workspace):
    mum = make_profile(workspace=workspace, external_id="MUM")
    dad = make_profile(workspace=workspace, external_id="DAD")
    post(marketer, "events", [event(external_id="MUM", identities=[("device", "tablet-1")])])
    body = post(marketer, "events", [event(external_id="DAD", identities=[("device", "tablet-1")])])
    assert body["profiles_merged"] == 0
    assert set(Profile.objects.values_list("pk", flat=True)) == {mum.pk, dad.pk}
    assert Event.objects.filter(profile=dad).count() == 1
    assert Identity.objects.get(value="tablet-1").profile_id == mum.pk
    # Anonymous traffic from the tablet stays with the profile that holds it.
    post(marketer, "events", [event(identities=[("device", "tablet-1")])])
    assert Event.objects.filter(profile=mum).count() == 2


def test_an_ignored_identifier_is_recorded_and_joins_nothing(marketer, workspace):
    MatchRule.objects.create(workspace=workspace, type="phone", strength="ignored", priority=1, max_profiles=5)
    a = make_profile(workspace=workspace, external_id="A")
    Identity.objects.create(workspace=workspace, profile=a, type="phone", value="+33612345678")
    post(marketer, "events", [event(external_id="B", identities=[("phone", "06 12 34 56 78"), ("cookie", "c-b")])])
    assert Profile.objects.count() == 2
    assert Identity.objects.get(value="c-b").profile.external_id == "B"


def test_the_household_cap_stops_a_shared_card_from_fusing_a_family(marketer, workspace):
    MatchRule.objects.create(workspace=workspace, type="loyalty", strength="deterministic", priority=90, max_profiles=2)
    post(marketer, "events", [event(external_id="ANA", identities=[("loyalty", "FAMILY")])])
    post(marketer, "events", [event(external_id="BEN", identities=[("loyalty", "FAMILY")])])
    assert Profile.objects.count() == 1  # two profiles joined: within the cap
    card = Identity.objects.get(value="FAMILY")
    assert (card.profiles_joined, card.shared) == (2, False)
    body = post(marketer, "events", [event(external_id="CAT", identities=[("loyalty", "FAMILY")])])
    assert body["profiles_merged"] == 0
    assert Profile.objects.count() == 2
    card.refresh_from_db()
    assert card.shared and card.profiles_joined == 2
    assert Profile.objects.get(external_id="CAT").events.count() == 1
    # Shared, it no longer stitches anyone; anonymous traffic with it goes to its holder.
    post(marketer, "events", [event(external_id="DAN", identities=[("loyalty", "FAMILY")])])
    assert Profile.objects.count() == 3


def test_one_batch_stitching_many_people_writes_every_row(marketer, workspace):
    for i in range(30):
        make_profile(workspace=workspace, external_id=f"K{i}")
    browsing = [event(identities=[("cookie", f"ck-{i}")]) for i in range(60)]
    post(marketer, "events", browsing)
    assert Profile.objects.filter(anonymous=True).count() == 60
    logins = [
        event(external_id=f"K{i}", identities=[("cookie", f"ck-{i}"), ("cookie", f"ck-{i + 30}")]) for i in range(30)
    ]
    body = post(marketer, "events", logins)
    assert (body["created"], body["profiles_merged"]) == (30, 60)
    assert Profile.objects.count() == 30 and not Profile.objects.filter(anonymous=True).exists()
    assert Event.objects.count() == 90
    assert all(p.events.count() == 3 for p in Profile.objects.all())


def test_create_missing_false_accepts_a_known_identifier_and_refuses_strangers(marketer, workspace):
    known = make_profile(workspace=workspace, external_id="K")
    Identity.objects.create(workspace=workspace, profile=known, type="device", value="d-1")
    body = post(
        marketer, "events", [event(identities=[("device", "d-1")]), event(identities=[("device", "d-2")])], strict=True
    )
    assert body["created"] == 1
    assert [(r["index"], list(r["errors"])) for r in body["rejected"]] == [(1, ["identities"])]
    assert Profile.objects.count() == 1


def test_unmerge_splits_a_wrong_merge_back_with_each_sides_rows(marketer, manager, workspace):
    customer = make_profile(workspace=workspace, external_id="C1", first_name="Léa")
    make_consent(profile=customer)
    post(marketer, "events", [event(identities=[("cookie", "ck-9")], type="cart_abandoned")])
    anonymous = Profile.objects.get(anonymous=True)
    make_consent(profile=anonymous, purpose="ad_targeting", channel="display")
    post(marketer, "events", [event(external_id="C1", identities=[("cookie", "ck-9")])])
    merge = ProfileMerge.objects.get(merged_profile_id=anonymous.pk)
    post(marketer, "events", [event(external_id="C1")])  # after the merge: stays with the survivor

    r = manager.post(
        reverse("profile-unmerge", kwargs={"workspace": "maison", "pk": customer.pk}),
        {"merge": merge.pk},
        format="json",
    )
    assert r.status_code == 200, r.content
    restored = Profile.objects.get(pk=anonymous.pk)
    assert restored.anonymous and restored.external_id == anonymous.external_id
    assert list(restored.events.values_list("type", flat=True)) == ["cart_abandoned"]
    assert set(Identity.objects.filter(profile=restored).values_list("value", flat=True)) == {"ck-9"}
    assert ConsentRecord.objects.filter(profile=restored).count() == 1
    assert customer.events.count() == 2 and ConsentRecord.objects.filter(profile=customer).count() == 1
    merge.refresh_from_db()
    assert merge.unmerged_at is not None
    # The restored external id is its own again; the same merge cannot be split twice.
    post(marketer, "events", [event(external_id=anonymous.external_id)])
    assert restored.events.count() == 2
    again = manager.post(
        reverse("profile-unmerge", kwargs={"workspace": "maison", "pk": customer.pk}),
        {"merge": merge.pk},
        format="json",
    )
    assert again.status_code == 400 and again.json()["merge"][0]["code"] == "already_unmerged"


def test_a_merge_by_hand_then_unmerge_restores_the_fields_it_filled(workspace, manager):
    survivor = make_profile(workspace=workspace, external_id="S", first_name="Sam")
    other = make_profile(workspace=workspace, external_id="O", city="Brest", first_name="Other", attributes={})
    r = manager.post(reverse("profile-merge", kwargs={"workspace": "maison", "pk": survivor.pk}), {"other": other.pk})
    assert r.status_code == 200 and r.json()["city"] == "Brest"
    profile_unmerge(merge=ProfileMerge.objects.get(survivor=survivor))
    survivor.refresh_from_db()
    assert (survivor.first_name, survivor.city) == ("Sam", "")
    assert Profile.objects.get(external_id="O").city == "Brest"


def test_a_viewer_cannot_unmerge_and_another_workspace_cannot_see_the_merge(viewer, outsider, workspace):
    a = make_profile(workspace=workspace, external_id="A")
    b = make_profile(workspace=workspace, external_id="B")
    from customers.services import profile_merge

    profile_merge(survivor=a, merged=b)
    merge = ProfileMerge.objects.get()
    path = reverse("profile-unmerge", kwargs={"workspace": "maison", "pk": a.pk})
    assert viewer.post(path, {"merge": merge.pk}, format="json").status_code == 403
    assert outsider.post(path, {"merge": merge.pk}, format="json").status_code == 404
    graph = reverse("profile-identity-graph", kwargs={"workspace": "maison", "pk": a.pk})
    assert outsider.get(graph).status_code == 404
    assert viewer.get(graph).status_code == 200


def test_audiences_list_the_merged_person_at_once(marketer, workspace, eager_tasks, django_capture_on_commit_callbacks):
    make_profile(workspace=workspace, external_id="C1", country="FR")
    segment = make_segment(
        workspace=workspace, definition={"event": "cart_abandoned", "within": "P1D", "count": {"gte": 1}}
    )
    post(marketer, "events", [event(identities=[("cookie", "ck-5")], type="cart_abandoned")])
    audience_compute(segment_id=segment.pk)
    anonymous = Profile.objects.get(anonymous=True)
    customer = Profile.objects.get(external_id="C1")
    assert members(segment) == {anonymous.pk}
    with django_capture_on_commit_callbacks(execute=True):
        post(marketer, "events", [event(external_id="C1", identities=[("cookie", "ck-5")])])
    assert members(segment) == {customer.pk}
    assert Audience.objects.get(segment=segment).size == 1
    with django_capture_on_commit_callbacks(execute=True):
        profile_unmerge(merge=ProfileMerge.objects.get())
    assert members(segment) == {anonymous.pk}
    # The customer's own behaviour put them in; a merge with someone who qualifies adds them.
    other = make_profile(workspace=workspace, external_id="C2")
    post(marketer, "events", [event(external_id="C2", type="cart_abandoned")])
    audience_compute(segment_id=segment.pk)
    from customers.services import profile_merge

    with django_capture_on_commit_callbacks(execute=True):
        profile_merge(survivor=customer, merged=other)
    assert members(segment) == {anonymous.pk, customer.pk}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_audiences_follow_a_merge_through_the_real_worker(marketer, workspace, celery_worker_process):
    make_profile(workspace=workspace, external_id="C1")
    post(marketer, "events", [event(identities=[("cookie", "ck-7")], type="cart_abandoned")])
    segment = make_segment(
        workspace=workspace, definition={"event": "cart_abandoned", "within": "P1D", "count": {"gte": 1}}
    )
    customer = Profile.objects.get(external_id="C1")
    post(marketer, "events", [event(external_id="C1", identities=[("cookie", "ck-7")])])
    wait_for(lambda: members(segment) == {customer.pk})


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_batches_stitching_the_same_people_at_once_end_with_one_profile_each_and_every_row(client_for, workspace):
    people = 200
    for i in range(people):
        make_profile(workspace=workspace, external_id=f"C{i}")
    # Each person browsed anonymously on two cookies; both batches log them in with both at once.
    post(client_for("marketer"), "events", [event(identities=[("cookie", f"a{i}")]) for i in range(people)])
    post(client_for("marketer"), "events", [event(identities=[("cookie", f"b{i}")]) for i in range(people)])
    batches = [
        [event(external_id=f"C{i}", identities=[("cookie", f"a{i}"), ("cookie", f"b{i}")]) for i in range(people)],
        [event(identities=[("cookie", f"b{i}"), ("email", f"p{i}@example.com")]) for i in range(people)]
        + [event(external_id=f"C{i}", identities=[("email", f"p{i}@example.com")]) for i in range(people)],
    ]
    barrier = threading.Barrier(2)
    results, errors = [], []

    def send(items):
        client = client_for("marketer")
        barrier.wait()
        try:
            results.append(post(client, "events", items))
        except Exception as exc:  # a failed request is the bug this test looks for
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(items,)) for items in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r["created"] for r in results) == 3 * people
    assert Profile.objects.filter(workspace=workspace).count() == people
    assert not Profile.objects.filter(anonymous=True).exists()
    assert Event.objects.filter(workspace=workspace).count() == 5 * people
    for i in (0, people // 2, people - 1):
        person = Profile.objects.get(external_id=f"C{i}")
        assert person.events.count() == 5
        assert set(person.identities.values_list("value", flat=True)) == {f"a{i}", f"b{i}", f"p{i}@example.com"}


def rules_url(pk=None, ws="maison"):
    if pk is None:
        return reverse("match-rule-list", kwargs={"workspace": ws})
    return reverse("match-rule-detail", kwargs={"workspace": ws, "pk": pk})


def test_match_rules_are_set_by_an_admin_and_refused_with_reasons(client_for, marketer, outsider, workspace):
    admin = client_for("admin")
    r = admin.post(rules_url(), {"type": "device", "strength": "deterministic", "priority": 30, "max_profiles": 2})
    assert r.status_code == 201, r.content
    rule = r.json()
    assert admin.post(rules_url(), {"type": "device", "strength": "weak"}).status_code == 409
    for bad, field in (
        ({"type": "fax", "strength": "weak"}, "type"),
        ({"type": "cookie", "strength": "sometimes"}, "strength"),
        ({"type": "cookie", "strength": "weak", "priority": 5000}, "priority"),
        ({"type": "cookie", "strength": "weak", "max_profiles": 0}, "max_profiles"),
    ):
        r = admin.post(rules_url(), bad)
        assert r.status_code == 400 and field in r.json(), (bad, r.content)
    assert admin.patch(rules_url(rule["id"]), {"type": "cookie"}, format="json").status_code == 400
    assert admin.patch(rules_url(rule["id"]), {"priority": 95}, format="json").json()["priority"] == 95
    assert marketer.post(rules_url(), {"type": "cookie", "strength": "ignored"}).status_code == 403
    assert marketer.get(rules_url()).status_code == 200
    assert outsider.get(rules_url(rule["id"])).status_code == 404
    in_force = {
        r["type"]: r for r in marketer.get(reverse("match-rule-defaults", kwargs={"workspace": "maison"})).json()
    }
    assert in_force["device"]["strength"] == "deterministic" and in_force["cookie"]["strength"] == "weak"
    assert in_force["email"]["priority"] == 80


def test_a_hashed_email_must_be_a_sha256_and_is_kept_lower_case(marketer, workspace):
    digest = "A" * 64
    body = post(
        marketer, "events", [event(identities=[("email_sha256", digest)]), event(identities=[("email_sha256", "abc")])]
    )
    assert body["created"] == 1
    assert [(r["index"], r["errors"]["identities"][0]["code"]) for r in body["rejected"]] == [(1, "invalid")]
    assert Identity.objects.get(type="email_sha256").value == "a" * 64


def test_erasing_a_person_split_back_from_a_merge_leaves_nothing_of_them_in_the_merge_record(workspace):
    from privacy.erasure import profiles_erase
    from tests.privacy.people import columns_holding

    survivor = make_profile(workspace=workspace, external_id="S-1")
    merged = make_profile(workspace=workspace, external_id="M-1", email="zoe.unique@example.org", city="Quimper")
    Identity.objects.create(workspace=workspace, profile=merged, type="cookie", value="ck-zoe-unique")
    from customers.services import profile_merge

    profile_merge(survivor=survivor, merged=merged)
    restored = profile_unmerge(merge=ProfileMerge.objects.get())
    assert columns_holding("zoe.unique@example.org")
    profiles_erase(workspace_id=workspace.pk, profile_ids=[restored.pk])
    assert columns_holding("zoe.unique@example.org") == []
    assert columns_holding("ck-zoe-unique") == []
    assert not ProfileMerge.objects.exists()
    assert Profile.objects.filter(pk=survivor.pk).exists()
