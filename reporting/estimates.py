"""What a campaign would cost, before it is activated: the messages its activation would send per
channel (campaigns.activation.campaign_forecast) at the cost per thousand the workspace paid on
that channel over the last 90 days (its delivery figures)."""

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Sum
from django.utils import timezone

from campaigns.activation import campaign_forecast
from campaigns.models import Campaign
from reporting.models import DeliveryFigure

WINDOW_DAYS = 90
CENT = Decimal("0.01")


def channel_cpms(*, workspace_id: int, currency: str) -> dict[str, Decimal]:
    """Cost per thousand impressions (or sends) per channel over the last 90 days, in `currency`."""
    since = timezone.localdate() - timedelta(days=WINDOW_DAYS)
    rows = (
        DeliveryFigure.objects.filter(workspace_id=workspace_id, day__gte=since, campaign__currency=currency)
        .values("channel")
        .annotate(spend=Sum("spend"), impressions=Sum("impressions"))
    )
    return {
        row["channel"]: (row["spend"] * 1000 / row["impressions"]).quantize(CENT, ROUND_HALF_UP)
        for row in rows
        if row["impressions"]
    }


def campaign_cost_estimate(*, campaign: Campaign, forecast: dict[str, Any] | None = None) -> dict[str, Any]:
    """`forecast`: the campaign's forecast when the caller has it already (it is counted otherwise)."""
    forecast = forecast if forecast is not None else campaign_forecast(campaign=campaign)
    messages: dict[str, int] = {}
    for target in forecast["targets"]:
        for channel in target["channels"]:
            messages[channel["channel"]] = messages.get(channel["channel"], 0) + channel["will_receive"]
    cpms = channel_cpms(workspace_id=campaign.workspace_id, currency=campaign.currency)
    channels = []
    for channel in campaign.channels:
        n = messages.get(channel, 0)
        cpm = cpms.get(channel)
        cost = None if cpm is None else (cpm * n / 1000).quantize(CENT, ROUND_HALF_UP)
        channels.append({"channel": channel, "messages": n, "cpm": cpm, "cost": cost})
    return {"channels": channels}
