"""Programmatic buying: the creatives a display campaign shows, the bidding settings of each of
its targets (a line item), and what the bidder did, day by day.

A line item is a display target of a running campaign: its audience (macro, fine above a
probability, a lookalike band through its segment), its area, its creatives, a base CPM scaled
by the person's value within a minimum and a maximum, a frequency cap and day parts. Django
publishes them to Redis (programmatic.publish) for the bidder (bidder/), which never reads the
database.
"""

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from accounts.models import Workspace
from campaigns.models import MoneyDigits, Target
from core.models import WorkspaceFromParent
from insights.models import PredictiveModel

CPM: MoneyDigits = {"max_digits": 10, "decimal_places": 4}
IAB_CATEGORY = RegexValidator(r"^IAB[0-9]{1,2}(-[0-9]{1,2})?$", "An IAB content category such as IAB22 or IAB3-1.")
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
        help_text="The banner's HTML, as the exchange renders it (the bid's adm). {{landing_url}} and "
        "{{click_url}} are replaced when published.",
    )
    landing_url = models.URLField(max_length=2000, help_text="Where a click leads (https).")
    advertiser_domain = models.CharField(
        max_length=253, validators=[DOMAIN], help_text="The advertiser's domain (the bid's adomain)."
    )
    categories = models.JSONField(
        default=list, blank=True, help_text='The ad\'s IAB categories, e.g. ["IAB22"]: exchanges block on them.'
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="programmatic_creative_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.width}x{self.height})"


class LineItem(WorkspaceFromParent, models.Model):
    """How a display target bids: price, value, caps, day parts, area, inventory and creatives."""

    class Inventory(models.TextChoices):
        SITE = "site", "Web sites"
        APP = "app", "Mobile apps"

    workspace_parent = "target"
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    target = models.OneToOneField(Target, on_delete=models.CASCADE, related_name="line_item")
    base_cpm = models.DecimalField(
        **CPM,
        validators=[MinValueValidator(Decimal("0.0001"))],
        help_text="The bid for a thousand impressions, in the campaign's currency, for a person of value 0.5 "
        "(or anyone, without a value model).",
    )
    min_cpm = models.DecimalField(**CPM, validators=[MinValueValidator(Decimal(0))])
    max_cpm = models.DecimalField(**CPM, validators=[MinValueValidator(Decimal("0.0001"))])
    value_model = models.ForeignKey(
        PredictiveModel,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="A membership or propensity model: the bid is the base CPM x the person's probability / 0.5.",
    )
    cap_impressions = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="At most this many impressions a person..."
    )
    cap_hours = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 90)],
        help_text="...in this many hours.",
    )
    dayparts = models.JSONField(
        default=list,
        blank=True,
        help_text="Hours of the workspace's day when it bids, [start, end) pairs, e.g. [[8, 12], [18, 23]]; "
        "empty: all day.",
    )
    weekdays = models.JSONField(default=list, blank=True, help_text="0 (Monday) to 6; empty: every day.")
    area = models.JSONField(
        default=dict,
        blank=True,
        help_text='Where the device is: {"countries": ["FRA"], "regions": ["Île-de-France"], "cities": ["Lyon"], '
        '"circles": [[48.8566, 2.3522, 10]]} (latitude, longitude, km); empty: anywhere.',
    )
    inventory = models.JSONField(default=list, blank=True, help_text='["site", "app"]; empty: both.')
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


class BidDay(models.Model):
    """What the bidder did for a line item on a day (UTC): read from its counters in Redis."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    line_item = models.ForeignKey(LineItem, on_delete=models.CASCADE, related_name="days", db_index=False)
    day = models.DateField()
    bids = models.PositiveBigIntegerField(default=0)
    wins = models.PositiveBigIntegerField(default=0)
    impressions = models.PositiveBigIntegerField(default=0)
    losses = models.PositiveBigIntegerField(default=0)
    spend_micros = models.PositiveBigIntegerField(default=0, help_text="Millionths of the campaign's currency.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day", "line_item_id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "line_item", "day"], name="programmatic_bidday_unique")
        ]

    def __str__(self) -> str:
        return f"{self.line_item_id} on {self.day}"
