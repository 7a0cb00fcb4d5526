from collections import Counter, defaultdict
from decimal import Decimal

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Sum
from django.utils.translation import gettext

from accounts.admin_base import ReadOnlyScopedAdmin, WorkspaceScopedAdmin, WorkspaceScopedForm, roles_for
from accounts.roles import Capability
from core.charts import bar_chart, line_chart
from programmatic import state as keys
from programmatic.models import BidDay, BidderDay, Creative, LineItem


@admin.register(Creative)
class CreativeAdmin(WorkspaceScopedAdmin):
    write_capability = Capability.RUN_CAMPAIGNS
    list_display = ["name", "width", "height", "advertiser_domain", "active", "workspace"]
    list_filter = ["workspace", "active"]
    search_fields = ["name", "advertiser_domain"]


class LineItemForm(WorkspaceScopedForm):
    class Meta:
        model = LineItem
        fields = [
            "target",
            "base_cpm",
            "min_cpm",
            "max_cpm",
            "value_model",
            "cap_impressions",
            "cap_hours",
            "dayparts",
            "weekdays",
            "area",
            "inventory",
            "trigger_hours",
            "creatives",
        ]

    def clean(self):
        cleaned = super().clean()
        target = cleaned.get("target")
        if target is not None:
            if target.workspace_id not in self.allowed_workspace_ids:
                raise ValidationError({"target": "You cannot write in this workspace."})
            foreign = [c for c in cleaned.get("creatives") or [] if c.workspace_id != target.workspace_id]
            if foreign:
                self.add_error("creatives", gettext("These creatives belong to another workspace."))
        return cleaned


@admin.register(LineItem)
class LineItemAdmin(WorkspaceScopedAdmin):
    form = LineItemForm
    write_capability = Capability.RUN_CAMPAIGNS
    list_display = ["target", "base_cpm", "min_cpm", "max_cpm", "cap_impressions", "cap_hours", "workspace"]
    list_filter = ["workspace"]
    list_select_related = ["target__campaign", "target__segment"]
    filter_horizontal = ["creatives"]

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "creatives" and not request.user.is_superuser:
            kwargs["queryset"] = Creative.objects.filter(workspace__in=list(roles_for(request)))
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(BidDay)
class BidDayAdmin(ReadOnlyScopedAdmin):
    """The bid report: a line item's day per row, filtered by campaign, target and day, with charts
    of the rows shown above the list (per day: bids, wins and impressions; spend and eCPM; win
    rate) and of the workspace's bid requests on those days (bid rate, no-bid reasons, late)."""

    change_list_template = "admin/programmatic/bidday/change_list.html"
    list_display = [
        "day",
        "campaign",
        "line_item",
        "bids",
        "wins",
        "win_rate",
        "impressions",
        "losses",
        "spend",
        "ecpm",
    ]
    list_filter = [
        "workspace",
        "line_item__target__campaign",  # the scoped admin offers only the rows' own (RelatedOnly)
        "line_item__target",
        "day",
    ]
    list_select_related = ["line_item__target__campaign", "line_item__target__segment"]
    date_hierarchy = "day"

    @admin.display(description="Campaign", ordering="line_item__target__campaign__name")
    def campaign(self, obj: BidDay) -> str:
        return obj.line_item.target.campaign.name

    @admin.display(description="Win rate")
    def win_rate(self, obj: BidDay) -> str:
        return "" if obj.win_rate is None else f"{obj.win_rate:.1%}"

    @admin.display(description="Spend", ordering="spend_nanos")
    def spend(self, obj: BidDay) -> str:
        return f"{obj.spend:.4f} {obj.line_item.target.campaign.currency}"

    @admin.display(description="eCPM")
    def ecpm(self, obj: BidDay) -> str:
        return "" if obj.ecpm is None else f"{obj.ecpm:.4f}"

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            context["bid_charts"] = bid_report_charts(context["cl"].queryset)
        return response


def bid_report_charts(rows) -> list:
    """The charts of the bid report, from the bid days shown (their filters and the workspaces the
    user may see) and the bidder's days of the same workspaces and dates."""
    per_day = list(
        rows.order_by()
        .values("day", "line_item__target__campaign__currency")
        .annotate(bids=Sum("bids"), wins=Sum("wins"), impressions=Sum("impressions"), nanos=Sum("spend_nanos"))
        .order_by("day")
    )
    if not per_day:
        return []
    days = sorted({row["day"] for row in per_day})
    labels = [day.isoformat() for day in days]
    at = {day: i for i, day in enumerate(days)}
    volume = {name: [0] * len(days) for name in ("bids", "wins", "impressions")}
    spend: dict[str, list[Decimal]] = {}
    ecpm: dict[str, list] = {}
    impressions: dict[str, list] = {}
    for row in per_day:
        i, currency = at[row["day"]], row["line_item__target__campaign__currency"]
        for name in volume:
            volume[name][i] += row[name]
        spend.setdefault(currency, [Decimal(0)] * len(days))[i] += Decimal(row["nanos"]) / keys.NANOS
        impressions.setdefault(currency, [0] * len(days))[i] += row["impressions"]
    for currency, amounts in spend.items():
        ecpm[currency] = [
            None if not shown else (amount * 1000 / shown).quantize(Decimal("0.0001")).normalize()
            for amount, shown in zip(amounts, impressions[currency], strict=True)
        ]
    win_rate = [None if not b else round(w / b, 4) for b, w in zip(volume["bids"], volume["wins"], strict=True)]
    charts = [
        line_chart(
            name="bids",
            labels=labels,
            series=[(name.capitalize(), values) for name, values in volume.items()],
            caption=gettext("Bids, wins and impressions per day"),
        ),
        line_chart(
            name="spend",
            labels=labels,
            series=[
                (f"Spend, {c}", [v.quantize(Decimal("0.0001")).normalize() for v in values])
                for c, values in spend.items()
            ],
            caption=gettext("Spend per day (billing notices)"),
        ),
        line_chart(
            name="ecpm",
            labels=labels,
            series=[(f"eCPM, {c}", values) for c, values in ecpm.items()],
            caption=gettext("Effective CPM per day (spend per thousand impressions)"),
        ),
        line_chart(
            name="win_rate", labels=labels, series=[("Win rate", win_rate)], caption=gettext("Wins per bid, per day")
        ),
    ]
    bidder_days = list(
        BidderDay.objects.filter(
            workspace_id__in=rows.order_by().values("workspace_id").distinct(), day__gte=days[0], day__lte=days[-1]
        ).order_by("day")
    )
    if bidder_days:
        requests: dict = defaultdict(int)
        answered: dict = defaultdict(int)
        late: dict = defaultdict(int)
        reasons: Counter = Counter()
        for day in bidder_days:
            requests[day.day] += day.requests
            answered[day.day] += day.bid_requests
            late[day.day] += day.late
            reasons.update({str(k): int(v) for k, v in (day.no_bid or {}).items() if isinstance(v, int)})
        seen = sorted(requests)
        charts.append(
            line_chart(
                name="bid_rate",
                labels=[d.isoformat() for d in seen],
                series=[
                    (gettext("Requests"), [requests[d] for d in seen]),
                    (gettext("Bid on"), [answered[d] for d in seen]),
                    (gettext("Late (no bid)"), [late[d] for d in seen]),
                ],
                caption=gettext("Bid requests, those bid on, and those answered too late, per day"),
            )
        )
        if reasons:
            charts.append(
                bar_chart(
                    name="no_bid",
                    bars=[(str(k), n) for k, n in reasons.most_common()],
                    caption=gettext("Requests not bid on, by reason"),
                )
            )
    return charts


@admin.register(BidderDay)
class BidderDayAdmin(ReadOnlyScopedAdmin):
    list_display = ["day", "requests", "bid_requests", "bid_rate", "late", "no_bid", "workspace"]
    list_filter = ["workspace"]

    @admin.display(description="Bid rate")
    def bid_rate(self, obj: BidderDay) -> str:
        return "" if obj.bid_rate is None else f"{obj.bid_rate:.1%}"
