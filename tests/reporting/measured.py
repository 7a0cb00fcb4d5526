"""A campaign with figures on two segments and two channels, deliveries and an attributed order."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from campaigns.models import Campaign
from core.time import local_day
from reporting.services import figures_ingest, rollup_run
from tests.factories import make_order, make_profile, make_running_campaign, make_touch, yesterday_at


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
    sent = yesterday_at(workspace, 10)  # the same local day whatever the time the test runs
    for person in people:
        make_touch(campaign=campaign, target=b, profile=person, sent_at=sent)
    make_order(profile=people[0], ordered_at=sent + timedelta(hours=2), amount="64.00")
    rollup_run(workspace=workspace)
    return Campaign.objects.get(pk=campaign.pk)


def two_target_campaign(workspace):
    return make_running_campaign(workspace=workspace, targets=2, channels=("email", "display"))


def measured_targets(workspace, campaign):
    """Figures on both targets and channels of `campaign`, deliveries and an attributed order."""

    a, b = campaign.targets.order_by("id")
    yesterday = local_day(workspace, timezone.now() - timedelta(days=1))
    figures_ingest(
        rows=[
            {
                "campaign": campaign,
                "target": a,
                "channel": "display",
                "day": yesterday,
                "source": "dsp",
                "impressions": 20000,
                "clicks": 400,
                "conversions": 20,
                "spend": Decimal("500.00"),
                "revenue": Decimal("1750.00"),
            },
            {
                "campaign": campaign,
                "target": b,
                "channel": "email",
                "day": yesterday,
                "source": "esp",
                "impressions": 0,
                "clicks": 0,
                "conversions": 0,
                "spend": Decimal("0"),
                "revenue": Decimal("0"),
            },
        ]
    )
    people = [make_profile(workspace=workspace) for _ in range(3)]
    sent = yesterday_at(workspace, 10)  # the same local day whatever the time the test runs
    for person in people:
        make_touch(campaign=campaign, target=b, profile=person, sent_at=sent)
    make_touch(campaign=campaign, target=b, profile=people[0], sent_at=sent + timedelta(minutes=5))
    make_order(profile=people[0], ordered_at=sent + timedelta(hours=2), amount="64.00")
    rollup_run(workspace=workspace)
    return campaign, a, b


def rule_body(campaign, **fields):
    body = {
        "name": "Cut poor ROAS",
        "campaign": campaign.pk,
        "conditions": [{"kpi": "roas", "days": 7, "operator": "lt", "threshold": "4"}],
        "basis": "reported",
        "min_impressions": 1000,
        "action": "budget_percent",
        "change_percent": "-20",
        "budget_min": "100.00",
        "schedule": "30min",
    }
    body.update(fields)
    return body
