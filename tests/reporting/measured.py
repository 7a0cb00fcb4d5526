"""A campaign with figures on two segments and two channels, deliveries and an attributed order."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from campaigns.models import Campaign
from core.time import local_day
from reporting.services import figures_ingest, rollup_run
from tests.factories import make_order, make_profile, make_running_campaign, make_touch


def measured_campaign(workspace, name="Soldes d'hiver"):
    campaign = make_running_campaign(
        workspace=workspace, targets=2, channels=("email", "display"), name=name, budget_total=Decimal("3000.00")
    )
    a, b = campaign.targets.order_by("id")
    a.segment.name, b.segment.name = "Fidèles", "Nouveaux"
    a.segment.save(update_fields=["name"])
    b.segment.save(update_fields=["name"])
    for days_ago, spend in ((3, "400.00"), (2, "450.00"), (1, "500.00")):
        day = local_day(workspace, timezone.now() - timedelta(days=days_ago))
        figures_ingest(
            rows=[
                {
                    "campaign": campaign,
                    "target": a,
                    "channel": "display",
                    "day": day,
                    "source": "dsp",
                    "impressions": 20000,
                    "clicks": 400,
                    "conversions": 20,
                    "spend": Decimal(spend),
                    "revenue": Decimal("1750.00"),
                },
                {
                    "campaign": campaign,
                    "target": b,
                    "channel": "email",
                    "day": day,
                    "source": "esp",
                    "impressions": 5000,
                    "clicks": 50,
                    "conversions": 2,
                    "spend": Decimal("20.00"),
                    "revenue": Decimal("30.00"),
                },
            ]
        )
    people = [make_profile(workspace=workspace) for _ in range(3)]
    sent = timezone.now() - timedelta(days=1, hours=1)
    for person in people:
        make_touch(campaign=campaign, target=b, profile=person, sent_at=sent)
    make_order(profile=people[0], ordered_at=sent + timedelta(hours=2), amount="64.00")
    rollup_run(workspace=workspace)
    return Campaign.objects.get(pk=campaign.pk)
