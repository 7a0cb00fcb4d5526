"""Programmatic buying: the creatives a display campaign shows, the bidding settings of each of
its targets (a line item), and what the bidder did, day by day.

A line item is a display target of a running campaign: its audience (macro, fine above a
probability, a lookalike band through its segment) or its trigger (retargeting: the people who
did the target's event, e.g. abandoned a cart, within the last hours and did not buy since), its
area, its creatives, a base CPM scaled by the person's value within a minimum and a maximum, a
frequency cap and day parts. Django
publishes them to Redis (programmatic.publish) for the bidder (bidder/), which never reads the
database.
"""

import re
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import Workspace
from campaigns.models import CampaignChannel, MoneyDigits, Target
from core.models import WorkspaceFromParent
from insights.models import PredictiveModel
from programmatic.errors import ProgrammaticErrorCode
from programmatic.state import NANOS

CPM: MoneyDigits = {"max_digits": 10, "decimal_places": 4}
IAB_CATEGORY = re.compile(r"^IAB[0-9]{1,2}(-[0-9]{1,2})?$")  # IAB22, IAB3-1
DOMAIN = RegexValidator(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", "A domain such as shop.example."
)


class Creative(models.Model):
    """A banner: its markup (the `adm` of a bid), size, landing page and advertiser domain."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=120)
    width = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(4000)])
    height = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(4000)])
    markup = models.TextField(
        max_length=20_000,
        help_text=_(
            "The banner's HTML, as the exchange renders it (the bid's adm). Replaced, HTML-escaped: {{landing_url}}, {{click_url}} (the landing page with the campaign's UTM parameters), the target's {{discount_code}} and {{discount_percent}}, and on a retargeting line item the product of the person's event: {{product}}, {{product_price}}, {{product_url}}, {{product_image}}, {{sku}}."
        ),
    )
    landing_url = models.URLField(max_length=2000, help_text=_("Where a click leads (https)."))
    advertiser_domain = models.CharField(
        max_length=253, validators=[DOMAIN], help_text=_("The advertiser's domain (the bid's adomain).")
    )
    categories = models.JSONField(
        default=list, blank=True, help_text=_('The ad\'s IAB categories, e.g. ["IAB22"]: exchanges block on them.')
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="programmatic_creative_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.width}x{self.height})"

    def clean(self) -> None:
        categories = self.categories
        if (
            not isinstance(categories, list)
            or len(categories) > 50
            or not all(isinstance(c, str) and IAB_CATEGORY.match(c) for c in categories)
        ):
            raise ValidationError(
                {
                    "categories": ValidationError(
                        gettext('A list of IAB content categories, e.g. ["IAB22", "IAB3-1"].'),
                        code=ProgrammaticErrorCode.CATEGORIES,
                    )
                }
            )


class LineItem(WorkspaceFromParent, models.Model):
    """How a display target bids: price, value, caps, day parts, area, inventory and creatives."""

    class Inventory(models.TextChoices):
        SITE = "site", _("Web sites")
        APP = "app", _("Mobile apps")

    workspace_parent = "target"
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    target = models.OneToOneField(Target, on_delete=models.CASCADE, related_name="line_item")
    base_cpm = models.DecimalField(
        **CPM,
        validators=[MinValueValidator(Decimal("0.0001"))],
        help_text=_(
            "The bid for a thousand impressions, in the campaign's currency, for a person of value 0.5 (or anyone, without a value model)."
        ),
    )
    min_cpm = models.DecimalField(**CPM, validators=[MinValueValidator(Decimal(0))])
    max_cpm = models.DecimalField(**CPM, validators=[MinValueValidator(Decimal("0.0001"))])
    value_model = models.ForeignKey(
        PredictiveModel,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("A membership or propensity model: the bid is the base CPM x the person's probability / 0.5."),
    )
    cap_impressions = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("At most this many impressions a person..."),
    )
    cap_hours = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 90)],
        help_text=_("...in this many hours."),
    )
    dayparts = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            "Hours of the workspace's day when it bids, [start, end) pairs, e.g. [[8, 12], [18, 23]]; empty: all day."
        ),
    )
    weekdays = models.JSONField(default=list, blank=True, help_text=_("0 (Monday) to 6; empty: every day."))
    area = models.JSONField(
        default=dict,
        blank=True,
        help_text=_(
            'Where the device is: {"countries": ["FRA"], "regions": ["Île-de-France"], "cities": ["Lyon"], "circles": [{"lat": 48.8566, "lon": 2.3522, "km": 10}]}; empty: anywhere.'
        ),
    )
    inventory = models.JSONField(default=list, blank=True, help_text=_('["site", "app"]; empty: both.'))
    trigger_hours = models.PositiveIntegerField(
        default=72,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 30)],
        help_text=_(
            "A triggered target (e.g. cart abandoned): bid on a person for this many hours after the event (once its delay has passed), unless they bought since. Its creatives may name the product: {{product}}, {{product_price}}, {{product_url}}, {{product_image}}, {{sku}}."
        ),
    )
    creatives = models.ManyToManyField(Creative, related_name="line_items")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(min_cpm__lte=models.F("max_cpm")), name="programmatic_min_max"),
            models.CheckConstraint(
                condition=models.Q(cap_impressions__isnull=True, cap_hours__isnull=True)
                | models.Q(cap_impressions__isnull=False, cap_hours__isnull=False),
                name="programmatic_cap_whole",
            ),
        ]

    def __str__(self) -> str:
        return f"Line item of {self.target}"

    def clean(self) -> None:
        errors: dict[str, ValidationError] = {}
        if self.min_cpm is not None and self.max_cpm is not None and self.min_cpm > self.max_cpm:
            errors["min_cpm"] = ValidationError(
                gettext("The minimum CPM is above the maximum."), code=ProgrammaticErrorCode.MIN_ABOVE_MAX
            )
        if (self.cap_impressions is None) != (self.cap_hours is None):
            errors["cap_hours"] = ValidationError(
                gettext("A frequency cap needs both a number of impressions and a number of hours."),
                code=ProgrammaticErrorCode.CAP_INCOMPLETE,
            )
        for name, problem, code in (
            ("dayparts", _dayparts_problem(self.dayparts), ProgrammaticErrorCode.DAYPARTS),
            ("weekdays", _weekdays_problem(self.weekdays), ProgrammaticErrorCode.WEEKDAYS),
            ("area", _area_problem(self.area), ProgrammaticErrorCode.AREA),
            ("inventory", _inventory_problem(self.inventory), ProgrammaticErrorCode.INVENTORY),
        ):
            if problem:
                errors[name] = ValidationError(problem, code=code)
        target = self.target if self.target_id else None
        if target is not None:
            if CampaignChannel.DISPLAY not in target.campaign.channels:
                errors["target"] = ValidationError(
                    gettext("Its campaign does not run on display."), code=ProgrammaticErrorCode.NOT_DISPLAY
                )
        if errors:
            raise ValidationError(errors)


def _dayparts_problem(value: Any) -> str:
    if not isinstance(value, list) or len(value) > 24:
        return "A list of [start, end) hour pairs, e.g. [[8, 12], [18, 23]]."
    for part in value:
        if (
            not isinstance(part, list)
            or len(part) != 2
            or not all(isinstance(h, int) and not isinstance(h, bool) for h in part)
            or not 0 <= part[0] < part[1] <= 24
        ):
            return "Each part is [start, end) with 0 <= start < end <= 24, e.g. [8, 12]."
    return ""


def _weekdays_problem(value: Any) -> str:
    if (
        not isinstance(value, list)
        or len(value) > 7
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in value)
        or len(set(value)) != len(value)
    ):
        return "Days of the week, each once: 0 (Monday) to 6 (Sunday)."
    return ""


def _inventory_problem(value: Any) -> str:
    if not isinstance(value, list) or not set(value) <= set(LineItem.Inventory.values) or len(set(value)) != len(value):
        return 'Some of "site" and "app", each once.'
    return ""


def _area_problem(value: Any) -> str:
    if not isinstance(value, dict):
        return 'An object such as {"countries": ["FRA"], "circles": [{"lat": 48.85, "lon": 2.35, "km": 10}]}.'
    unknown = set(value) - {"countries", "regions", "cities", "circles"}
    if unknown:
        return f"Unknown keys: {', '.join(sorted(unknown))}; use countries, regions, cities and circles."
    for key in ("countries", "regions", "cities", "circles"):
        items = value.get(key, [])
        if not isinstance(items, list) or len(items) > 500:
            return f"{key}: a list of at most 500."
    for country in value.get("countries", []):
        if not (isinstance(country, str) and len(country) == 3 and country.isascii() and country.isalpha()):
            return "countries: ISO 3166-1 alpha-3 codes, as OpenRTB gives them (FRA, BEL...)."
    for key in ("regions", "cities"):
        for text in value.get(key, []):
            if not (isinstance(text, str) and 0 < len(text.strip()) <= 100 and "\x00" not in text):
                return f"{key}: names of 1 to 100 characters."
    for circle in value.get("circles", []):
        if not (
            isinstance(circle, dict)
            and set(circle) == {"lat", "lon", "km"}
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in circle.values())
            and -90 <= circle["lat"] <= 90
            and -180 <= circle["lon"] <= 180
            and 0 < circle["km"] <= 1000
        ):
            return 'circles: {"lat": latitude, "lon": longitude, "km": radius}, a radius from 0 to 1000 km.'
    return ""


class BidDay(models.Model):
    """What the bidder did for a line item on a day of the workspace's calendar, from its notices."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    line_item = models.ForeignKey(LineItem, on_delete=models.CASCADE, related_name="days", db_index=False)
    day = models.DateField()
    bids = models.PositiveBigIntegerField(default=0)
    wins = models.PositiveBigIntegerField(default=0)
    impressions = models.PositiveBigIntegerField(default=0)
    losses = models.PositiveBigIntegerField(default=0)
    spend_nanos = models.PositiveBigIntegerField(default=0, help_text=_("Billionths of the campaign's currency."))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day", "line_item_id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "line_item", "day"], name="programmatic_bidday_unique")
        ]

    def __str__(self) -> str:
        return f"{self.line_item_id} on {self.day}"

    @property
    def spend(self) -> Decimal:
        """Billed spend, in the campaign's currency."""
        return Decimal(self.spend_nanos) / NANOS

    @property
    def ecpm(self) -> Decimal | None:
        """Spend per thousand impressions."""
        return None if not self.impressions else Decimal(self.spend_nanos) / 1_000_000 / self.impressions

    @property
    def win_rate(self) -> float | None:
        return None if not self.bids else round(self.wins / self.bids, 4)


class BidderDay(models.Model):
    """The bid requests of a workspace on a day of its calendar: how many, how many were bid on,
    answered too late, and why the others were not (the bidder's counters in Redis)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    requests = models.PositiveBigIntegerField(default=0)
    bid_requests = models.PositiveBigIntegerField(default=0, help_text=_("Requests answered with a bid."))
    late = models.PositiveBigIntegerField(default=0, help_text=_("Requests past tmax less the network margin (204)."))
    no_bid = models.JSONField(default=dict, blank=True, help_text=_("Requests without a bid, by reason."))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day"]
        constraints = [models.UniqueConstraint(fields=["workspace", "day"], name="programmatic_bidderday_unique")]

    def __str__(self) -> str:
        return f"Bid requests of workspace {self.workspace_id} on {self.day}"

    @property
    def bid_rate(self) -> float | None:
        return None if not self.requests else round(self.bid_requests / self.requests, 4)


class NoticeCursor(models.Model):
    """The last entry of the workspace's notice stream recorded in the bid days and the ledger."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="+")
    last_id = models.CharField(max_length=40, default="0-0")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Notices of workspace {self.workspace_id} up to {self.last_id}"
