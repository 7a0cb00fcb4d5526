"""Setting a campaign up: reach per target and channel, overlap with the running campaigns, the
message for a real member and a test send to oneself, the cost at the workspace's CPM, the
calendar; after activation, what happened. Nothing of another workspace shows."""

import json
from datetime import timedelta
from decimal import Decimal

from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, Connector
from campaigns.services import campaign_activate
from campaigns.setup_aids import campaign_overlap, message_preview
from reporting.estimates import campaign_cost_estimate
from reporting.models import DeliveryFigure
from tests.factories import make_campaign, make_consent, make_profile, make_segment, make_user


def lyon_and_paris(workspace):
    people = [
        make_profile(workspace=workspace, first_name=f"Léa{n}", city="Lyon", email=f"l{n}@example.org")
        for n in range(4)
    ]
    people += [
        make_profile(workspace=workspace, first_name=f"Paul{n}", city="Paris", email=f"p{n}@example.org")
        for n in range(2)
    ]
    for person in people[:3]:
        make_consent(profile=person, channel="email")
    lyon = make_segment(workspace=workspace, definition={"field": "city", "op": "eq", "value": "Lyon"})
    everyone = make_segment(workspace=workspace, definition={"field": "city", "op": "is_set", "value": True})
    return people, lyon, everyone


def test_overlap_preview_and_cost(workspace, other_workspace):
    people, lyon, everyone = lyon_and_paris(workspace)
    campaign = make_campaign(
        workspace=workspace,
        targets=[
            {
                "segment": lyon,
                "variant": "A",
                "subject_template": "Bonjour {{first_name}}",
                "body_template": "À {{city}}",
            }
        ],
    )
    running = make_campaign(workspace=workspace, segment=everyone, name="Toujours")
    Campaign.objects.filter(pk=running.pk).update(status=Campaign.Status.ACTIVE)
    other = make_campaign(workspace=other_workspace, segment=make_segment(workspace=other_workspace))
    Campaign.objects.filter(pk=other.pk).update(status=Campaign.Status.ACTIVE)

    assert [(row["campaign"].pk, row["shared"]) for row in campaign_overlap(campaign=campaign)] == [(running.pk, 4)]
    preview = message_preview(target=campaign.targets.get())
    first = min(p.pk for p in people[:4])
    assert preview["profile"] == next(p.external_id for p in people if p.pk == first)
    assert preview["subject"] == f"Bonjour {next(p.first_name for p in people if p.pk == first)}"
    assert preview["body"] == "À Lyon"

    # No figures yet: no cost. Then 2 EUR for 1,000 e-mails sent over the last 90 days: 3 would cost 0.01.
    assert campaign_cost_estimate(campaign=campaign)["channels"] == [
        {"channel": "email", "messages": 3, "cpm": None, "cost": None}
    ]
    DeliveryFigure.objects.create(
        workspace=workspace,
        campaign=running,
        channel="email",
        day=timezone.localdate() - timedelta(days=3),
        impressions=1000,
        spend=Decimal("2.00"),
        updated_at=timezone.now(),
    )
    DeliveryFigure.objects.create(
        workspace=other_workspace,
        campaign=other,
        channel="email",
        day=timezone.localdate(),
        impressions=1,
        spend=Decimal("900"),
        updated_at=timezone.now(),
    )
    assert campaign_cost_estimate(campaign=campaign)["channels"] == [
        {"channel": "email", "messages": 3, "cpm": Decimal("2.00"), "cost": Decimal("0.01")}
    ]


def test_the_campaign_page_helps_set_up_then_says_what_happened(
    client, workspace, other_workspace, receiver, eager_tasks, django_capture_on_commit_callbacks
):
    calls, url = receiver
    people, lyon, everyone = lyon_and_paris(workspace)
    campaign = make_campaign(
        workspace=workspace,
        name="Printemps lyonnais",
        targets=[{"segment": lyon, "variant": "A", "subject_template": "Bonjour {{first_name}}"}],
    )
    Connector.objects.create(workspace=workspace, channel="email", kind="webhook", url=url, secret="k", max_attempts=1)
    make_campaign(workspace=other_workspace, name="Campagne secrète")
    user = make_user(workspace=workspace, role="marketer")
    user.email = "marketeuse@example.org"
    user.save()
    client.force_login(user)
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert 'id="cible-reach"' in page and "In all, 3 messages would go out" in page
    assert "Bonjour Léa" in page and 'id="cible-cost"' in page

    target = campaign.targets.get()
    test_url = reverse("admin:campaigns_campaign_test_send", args=[campaign.pk]) + f"?target={target.pk}&channel=email"
    r = client.post(test_url, follow=True)
    assert "Test sent." in r.content.decode()
    body = json.loads(calls.calls[-1][1])
    assert body["test"] is True and body["deliveries"][0]["email"] == "marketeuse@example.org"
    assert body["deliveries"][0]["subject"].startswith("Bonjour Léa")
    assert not campaign.touches.exists()  # a test sends nothing to the audience
    # A target of another campaign, or a channel the campaign does not use, is refused.
    r = client.post(
        reverse("admin:campaigns_campaign_test_send", args=[campaign.pk]) + "?target=99999999&channel=email",
        follow=True,
    )
    assert "Choose one of the campaign" in r.content.decode()

    calendar = client.get(reverse("admin:campaigns_campaign_calendar")).content.decode()
    assert "Printemps lyonnais" in calendar and "Campagne secrète" not in calendar
    assert client.get(reverse("admin:campaigns_campaign_calendar"), {"month": "not-a-month"}).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        campaign_activate(campaign=campaign, actor=user, source="admin")
    page = client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()
    assert 'id="cible-sends"' in page and 'id="cible-handoffs"' in page
    assert "<td>A</td><td>email</td><td>Handed to the channel</td><td>3</td>" in page
