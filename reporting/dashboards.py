"""What the admin dashboards show: a campaign's performance, and the workspace's at a glance."""

from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Workspace
from campaigns.models import Campaign
from campaigns.services import spend_allowed_today
from core.charts import bar_chart, line_chart
from core.time import local_day
from reporting.reports import ReportQuery, report_rows, report_totals, spend_series


def _kpi_charts(rows: list[dict], label_of, name: str) -> dict[str, Any]:
    for row in rows:
        row["label"] = label_of(row)
    return {
        "roas": bar_chart(
            name=f"{name}-roas", bars=[(label_of(r), r["roas"]) for r in rows], caption=f"ROAS by {name}"
        ),
        "ctr": bar_chart(name=f"{name}-ctr", bars=[(label_of(r), r["ctr"]) for r in rows], caption=f"CTR by {name}"),
        "cpa": bar_chart(name=f"{name}-cpa", bars=[(label_of(r), r["cpa"]) for r in rows], caption=f"CPA by {name}"),
    }


def campaign_dashboard(*, campaign: Campaign, basis: str = "attributed") -> dict[str, Any]:
    """Spend against budget and pacing, KPIs per segment and channel (optimisation adds its plan and rules)."""
    query = ReportQuery(workspace=campaign.workspace, campaigns=[campaign.pk], basis=basis)
    series = spend_series(campaign=campaign)
    labels = [row["day"].isoformat() for row in series]
    by_segment = report_rows(query=query.grouped("segment"))
    by_channel = report_rows(query=query.grouped("channel"))
    return {
        "campaign": campaign,
        "basis": basis,
        "totals": report_totals(query=query),
        "allowed_today": spend_allowed_today(campaign=campaign),
        "series": series,
        "spend_chart": line_chart(
            name="spend-vs-budget",
            labels=labels,
            series=[
                (gettext("Spend to date"), [row["cumulative"] for row in series]),
                (gettext("Budget"), [row["budget"] for row in series]),
                (gettext("Even pacing"), [row["pacing"] for row in series]),
            ],
            caption=gettext("Spend to date against the budget and even pacing"),
        ),
        "daily_chart": line_chart(
            name="daily-spend",
            labels=labels,
            series=[(gettext("Spend per day"), [row["spend"] for row in series])],
            caption=gettext("Spend per day"),
        ),
        "segment_rows": by_segment,
        "segment_charts": _kpi_charts(by_segment, lambda r: r["segment_name"] or "(whole campaign)", "segment"),
        "channel_rows": by_channel,
        "channel_charts": _kpi_charts(by_channel, lambda r: r["channel"] or "(no channel)", "channel"),
    }


def workspace_dashboard(*, workspace: Workspace, days: int = 30, basis: str = "attributed") -> dict[str, Any]:
    today = local_day(workspace, timezone.now())
    since = today - timedelta(days=days - 1)
    query = ReportQuery(workspace=workspace, date_from=since, date_to=today, basis=basis)
    by_campaign = report_rows(query=query.grouped("campaign"))
    by_day = report_rows(query=query.grouped("day"))
    by_channel = report_rows(query=query.grouped("channel"))
    by_segment = report_rows(query=query.grouped("segment"))
    campaigns = {
        c.pk: c for c in Campaign.objects.filter(workspace=workspace, pk__in=[r["campaign"] for r in by_campaign])
    }
    for row in by_campaign:
        campaign = campaigns[row["campaign"]]
        row["object"] = campaign
        row["budget_used"] = (
            None if not campaign.budget_total else (campaign.spent * 100 / campaign.budget_total).quantize(1)
        )
    day_values = {row["day"]: row for row in by_day}
    days_list = [since + timedelta(days=i) for i in range(days)]
    return {
        "workspace": workspace,
        "since": since,
        "today": today,
        "days": days,
        "basis": basis,
        "totals": report_totals(query=query),
        "by_campaign": by_campaign,
        "budget_chart": bar_chart(
            name="budget-used",
            bars=[(r["campaign_name"], r["budget_used"]) for r in by_campaign],
            caption=gettext("Share of the total budget spent, by campaign"),
            unit=" %",
        ),
        "trend_chart": line_chart(
            name="workspace-trend",
            labels=[d.isoformat() for d in days_list],
            series=[
                (gettext("Spend"), [(day_values.get(d) or {}).get("spend", 0) for d in days_list]),
                (gettext("Revenue"), [(day_values.get(d) or {}).get("revenue", 0) for d in days_list]),
            ],
            caption=f"Spend and revenue per day, last {days} days",
        ),
        "channel_rows": by_channel,
        "channel_charts": _kpi_charts(by_channel, lambda r: r["channel"] or "(no channel)", "channel"),
        "segment_rows": by_segment,
        "segment_charts": _kpi_charts(by_segment, lambda r: r["segment_name"] or "(whole campaign)", "segment"),
    }


def parse_days(value: str | None) -> int:
    try:
        days = int(value or 30)
    except ValueError:
        return 30
    return min(max(days, 1), 366)
