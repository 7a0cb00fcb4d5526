"""The admin's home page: the workspace at a glance, figures checked against the data, nothing of
another workspace."""

from datetime import date, timedelta
from decimal import Decimal

from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign
from optimisation.home import base_overview
from privacy.requests import request_create
from tests.factories import make_campaign, make_consent, make_order, make_profile, make_user


def born(age: int) -> date:
    today = timezone.localdate()
    return today.replace(year=today.year - age) - timedelta(days=40)


def test_the_home_page_shows_the_workspace_at_a_glance(client, workspace, other_workspace):
    a = make_profile(workspace=workspace, birth_date=born(30), region="Bretagne")
    b = make_profile(workspace=workspace, birth_date=born(30), region="Bretagne")
    make_profile(workspace=workspace, birth_date=born(70), region="Occitanie")
    make_profile(workspace=workspace)
    secret = make_profile(workspace=other_workspace, region="Région secrète", birth_date=born(20))
    make_order(profile=a, amount="120.00")
    make_order(profile=a, amount="100.00")  # 220 in all
    make_order(profile=b, amount="20.00")
    make_consent(profile=a, channel="email")
    make_consent(profile=b, channel="sms")
    make_consent(profile=b, channel="email", status="denied")
    campaign = make_campaign(workspace=workspace, name="Soldes d'hiver", budget_total="1000.00")
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.ACTIVE, spent=Decimal("250.00"))
    weeks_ago = timezone.now() - timedelta(days=28)  # due within the week
    request_create(workspace=workspace, kind="erasure", profile=a, received_at=weeks_ago)
    request_create(workspace=other_workspace, kind="access", profile=secret, received_at=weeks_ago)

    figures = base_overview(workspace=workspace)
    assert figures["total"] == 4
    ages = {row["label"]: row["count"] for row in figures["ages"]}
    assert (ages["25-34"], ages["65+"], ages["Unknown"]) == (2, 1, 1)
    assert {row["label"]: row["count"] for row in figures["regions"]} == {
        "Bretagne": 2,
        "Occitanie": 1,
        "Other or unknown": 1,
    }
    values = {row["label"]: row["count"] for row in figures["values"]}
    assert (values["No purchase"], values["1-49"], values["200-499"]) == (2, 1, 1)
    consent = {row["label"]: row["count"] for row in figures["consent"]}
    assert (consent["E-mail"], consent["SMS"], consent["Push notification"]) == (1, 1, 0)

    client.force_login(make_user(workspace=workspace, role="marketer"))
    page = client.get(reverse("admin:index")).content.decode()
    assert 'id="cible-home"' in page and "Soldes d&#x27;hiver" in page and "250.00 EUR (25.0 %)" in page
    assert "A request (Erasure (Art. 17)) is due on" in page
    assert "Région secrète" not in page and "Access (Art. 15)" not in page
    # Another workspace cannot be chosen by its slug.
    page = client.get(reverse("admin:index"), {"workspace": other_workspace.slug}).content.decode()
    assert "Région secrète" not in page
