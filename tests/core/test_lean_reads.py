"""The lean read path (core.lean) answers byte for byte what DRF answers, on the demo data and on
stored values chosen to trip an encoder: floats under 1e-4, big numbers, line separators, control
characters, astral characters, time zones with odd offsets."""

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Role
from accounts.services import workspace_update
from audiences.services import audience_compute
from campaigns.services import campaign_create
from customers.models import Identity, Profile
from demo.seed import demo_seed
from segments.services import segment_create
from tests.factories import make_user, token_for

pytestmark = pytest.mark.django_db

API = "/api/workspaces/maison"

ODD_TEXTS = ["a\u2028b\u2029c", "ctrl \x01\x1f\x7f", "emoji \U0001f600 é", 'quote " back \\ slash', "</script>"]
ODD_ATTRIBUTES = {
    "tiny": 1e-05,
    "tinier": -2.5e-07,
    "huge": 1e20,
    "exact": 123.456,
    "whole": 2.0,
    "big_int": 2**62,
    "nested": {"list": [1e-9, "x\u2028", True, None], "zero": 0.0, "neg": -0.0},
    "text": "line\nbreak\ttab",
}


@pytest.fixture
def data(workspace):
    demo_seed(workspace=workspace, profiles=120, events_per_profile=3, orders_per_profile=1.5, seed=7)
    for i, text in enumerate(ODD_TEXTS):
        profile = Profile.objects.create(
            workspace=workspace,
            external_id=f"odd-{i}",
            first_name=text,
            last_name=text[::-1],
            city=text,
            birth_date=date(1980 + i, 2, 28),
            latitude=1e-05 * (i + 1),
            longitude=-2.5e-07,
            attributes=ODD_ATTRIBUTES,
        )
        Identity.objects.create(workspace=workspace, profile=profile, type="email", value=f"odd{i}@example.com")
    women = segment_create(
        workspace=workspace, name="women", definition={"field": "gender", "op": "eq", "value": "female"}
    )
    men = segment_create(workspace=workspace, name="men", definition={"field": "gender", "op": "eq", "value": "male"})
    audience_compute(segment_id=women.pk)
    owner = make_user(workspace=workspace, role=Role.MANAGER)
    now = timezone.now()
    for i in range(3):
        campaign_create(
            workspace=workspace,
            owner=owner,
            name=f"Campaign {i} {ODD_TEXTS[i]}",
            channels=["email", "sms"][: i + 1],
            starts_at=now - timedelta(days=1) if i == 0 else now + timedelta(days=i),
            ends_at=now + timedelta(days=30 + i),
            budget_total=Decimal("1000.00") if i != 2 else None,
            budget_daily=Decimal("50.00") if i == 1 else None,
            targets=[
                {"segment": women, "variant": "A", "budget_share": Decimal("60"), "restriction": None},
                {"segment": men, "variant": "B", "budget_share": Decimal("40")},
            ],
        )
    return {"women": women, "campaigns": list(workspace.campaigns.values_list("pk", flat=True))}


def _urls(workspace, data) -> list[str]:
    profiles = list(Profile.objects.filter(workspace=workspace).order_by("pk").values_list("pk", "city"))
    some = profiles[:: max(1, len(profiles) // 15)] + profiles[-len(ODD_TEXTS) :]
    city = profiles[0][1]
    return [
        f"{API}/profiles/",
        f"{API}/profiles/?page=2",
        f"{API}/profiles/?page_size=500",
        f"{API}/profiles/?gender=female&city={city}",
        f"{API}/profiles/?ordering=-last_name&page_size=30",
        f"{API}/profiles/?search=odd",
        f"{API}/profiles/?cursor=&page_size=40",
        f"{API}/profiles/?cursor=&gender=male&ordering=-id&count=exact",
        *(f"{API}/profiles/{pk}/" for pk, _ in some),
        f"{API}/campaigns/",
        f"{API}/campaigns/?ordering=name",
        *(f"{API}/campaigns/{pk}/" for pk in data["campaigns"]),
        f"{API}/segments/{data['women'].pk}/members/",
        f"{API}/segments/{data['women'].pk}/members/?page=2&page_size=20",
        f"{API}/segments/{data['women'].pk}/members/?cursor=&page_size=20",
    ]


def _answers(client, urls, settings, lean: bool) -> list[tuple[int, bytes]]:
    settings.CIBLE_LEAN_READS = lean
    return [(r.status_code, r.content) for r in (client.get(url) for url in urls)]


@pytest.mark.parametrize("zone", ["Europe/Paris", "UTC", "Asia/Kolkata", "America/St_Johns"])
def test_the_lean_answers_are_the_bytes_drf_gives(workspace, data, marketer, settings, zone):
    workspace_update(workspace=workspace, time_zone=zone)
    urls = _urls(workspace, data)
    lean = _answers(marketer, urls, settings, lean=True)
    drf = _answers(marketer, urls, settings, lean=False)
    for url, (status, body), (old_status, old_body) in zip(urls, lean, drf, strict=True):
        assert status == old_status == 200, url
        assert body == old_body, url


def test_the_odd_values_come_out_as_json_reads_them(workspace, data, marketer):
    profile = Profile.objects.get(workspace=workspace, external_id="odd-0")
    body = marketer.get(f"{API}/profiles/{profile.pk}/").content
    assert b'"latitude":1e-05' in body and b"\\u2028" in body and b"\xe2\x80\xa8" not in body
    stored = Profile.objects.get(pk=profile.pk).attributes  # as the database gives it back (jsonb: numeric)
    assert json.dumps(stored, ensure_ascii=False, separators=(",", ":")).encode() in body.replace(
        b"\\u2028", "\u2028".encode()
    )
    assert json.loads(body)["attributes"] == stored


def test_a_missing_or_foreign_row_is_the_same_404(workspace, other_workspace, data, marketer, settings):
    foreign = Profile.objects.create(workspace=other_workspace, external_id="theirs")
    urls = [
        f"{API}/profiles/{foreign.pk}/",
        f"{API}/profiles/999999999/",
        f"{API}/profiles/abc/",
        f"{API}/campaigns/0/",
    ]
    lean = _answers(marketer, urls, settings, lean=True)
    drf = _answers(marketer, urls, settings, lean=False)
    assert lean == drf
    assert {status for status, _ in lean} == {404}


def test_the_browsable_api_and_indented_json_still_answer(workspace, data, marketer):
    profile = Profile.objects.filter(workspace=workspace).first()
    html = marketer.get(f"{API}/profiles/{profile.pk}/", HTTP_ACCEPT="text/html")
    assert html.status_code == 200 and b"<html" in html.content
    indented = marketer.get(f"{API}/campaigns/", HTTP_ACCEPT="application/json; indent=2")
    assert indented.status_code == 200 and b'\n  "count"' in indented.content


def test_a_newcomer_token_reads_the_same(workspace, data, settings):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(make_user(workspace=workspace, role=Role.VIEWER))}")
    urls = _urls(workspace, data)[:3]
    assert _answers(client, urls, settings, lean=True) == _answers(client, urls, settings, lean=False)
