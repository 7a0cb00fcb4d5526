"""Reporting: delivery figures from the channels, clicks, attribution of orders, and the daily roll-up.

The roll-up is one row per campaign, target, channel and day; reports and rules read it, never
the raw tables. Money is an exact decimal in the campaign's currency.
"""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Currency, Workspace
from campaigns.models import MONEY, Campaign, CampaignChannel, Target, Touch
from core.leases import LeasedJob
from core.personal_data import PersonalData
from customers.models import Event, Order, Profile


class ConversionBasis(models.TextChoices):
    """Which conversions KPIs count: those Cible attributed, or those the platforms reported."""

    ATTRIBUTED = "attributed", _("Conversions attributed by Cible")
    REPORTED = "reported", _("Conversions reported by the platforms")


class AttributionSettings(models.Model):
    """How long after a touch an order still counts for it: the workspace's attribution windows."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="attribution_settings")
    click_window = models.DurationField(
        default=timedelta(days=7),
        validators=[MinValueValidator(timedelta(0)), MaxValueValidator(timedelta(days=90))],
        help_text=_("An order up to this long after a click is the click's (e.g. 7 days)."),
    )
    view_window = models.DurationField(
        default=timedelta(days=1),
        validators=[MinValueValidator(timedelta(0)), MaxValueValidator(timedelta(days=30))],
        help_text=_("An order up to this long after a delivery seen without a click is the delivery's (e.g. 1 day)."),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "attribution settings"

    def __str__(self) -> str:
        return f"click {self.click_window}, view {self.view_window}"


class DeliveryFigure(models.Model):
    """What a channel or ad platform reports for one campaign, target, channel and day.

    The natural key is (campaign, target, channel, day, source): sending a row again replaces its
    figures, and the spend ledger receives only the difference, once.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="delivery_figures")
    target = models.ForeignKey(Target, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=16, choices=CampaignChannel.choices)
    day = models.DateField(help_text=_("The day of delivery, in the workspace's time zone."))
    source = models.CharField(max_length=40, default="", blank=True, help_text=_("The reporting platform, e.g. meta."))
    impressions = models.PositiveBigIntegerField(default=0)
    clicks = models.PositiveBigIntegerField(default=0)
    conversions = models.PositiveBigIntegerField(default=0, help_text=_("As the platform counts them."))
    spend = models.DecimalField(**MONEY, default=Decimal(0), validators=[MinValueValidator(Decimal(0))])
    revenue = models.DecimalField(**MONEY, default=Decimal(0), validators=[MinValueValidator(Decimal(0))])
    booked_spend = models.DecimalField(**MONEY, default=Decimal(0), editable=False, help_text=_("In the ledger."))
    revision = models.PositiveIntegerField(default=1, editable=False)
    received_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "campaign", "target", "channel", "day", "source"],
                condition=Q(target__isnull=False),
                name="reporting_figure_key",
            ),
            models.UniqueConstraint(
                fields=["workspace", "campaign", "channel", "day", "source"],
                condition=Q(target__isnull=True),
                name="reporting_figure_key_no_target",
            ),
        ]
        indexes = [models.Index(fields=["workspace", "updated_at"], name="reporting_figure_changed")]
        ordering = ["-day", "campaign_id", "channel", "id"]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.channel} {self.day} ({self.source or 'direct'})"


class Click(models.Model):
    """A click on a delivery, from a click event that names the touch it came from."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    touch = models.ForeignKey(Touch, on_delete=models.CASCADE, related_name="+", db_index=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+", db_index=False)
    event = models.OneToOneField(Event, on_delete=models.CASCADE, related_name="+")
    occurred_at = models.DateTimeField()

    personal_data = PersonalData(
        category="Clicks on deliveries",
        fields=("touch", "occurred_at"),
        purposes=("Attribution and reporting",),
        legal_basis="legitimate interests",
        retention="events_months",
        erasure="Kept without identity (the profile is emptied).",
    )

    class Meta:
        indexes = [models.Index(fields=["profile", "occurred_at"], name="reporting_click_profile")]

    def __str__(self) -> str:
        return f"click on {self.touch_id} at {self.occurred_at}"


class Attribution(models.Model):
    """An order credited to the last touch of the same person within the attribution window.

    Derived data, rebuilt by the roll-up from orders and touches: its references are not foreign-key
    constraints in the database (Django still deletes the rows with what they point to), so writing
    hundreds of thousands of them does not check each reference at commit.
    """

    class Kind(models.TextChoices):
        CLICK = "click", _("Click-through")
        VIEW = "view", _("View-through")

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="attribution", db_constraint=False)
    touch = models.ForeignKey(Touch, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    channel = models.CharField(max_length=16, choices=CampaignChannel.choices)
    kind = models.CharField(max_length=5, choices=Kind.choices)
    touched_at = models.DateTimeField()
    ordered_at = models.DateTimeField()
    day = models.DateField(help_text=_("The day of the order, in the workspace's time zone."))
    revenue = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, choices=Currency.choices)

    class Meta:
        indexes = [models.Index(fields=["campaign", "day"], name="reporting_attribution_day")]

    def __str__(self) -> str:
        return f"order {self.order_id} -> touch {self.touch_id} ({self.kind})"


class DailyRollup(models.Model):
    """Everything known of one campaign, target, channel and day; what reports and rules read.

    `target` is empty for figures and spend reported for the campaign as a whole; `channel` is
    empty for spend recorded without a channel. Derived data, like `Attribution`: no database
    foreign-key constraints.
    """

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    target = models.ForeignKey(
        Target, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    channel = models.CharField(max_length=16, blank=True)
    day = models.DateField()
    impressions = models.PositiveBigIntegerField(default=0)
    clicks = models.PositiveBigIntegerField(default=0)
    spend = models.DecimalField(**MONEY, default=Decimal(0))
    reported_conversions = models.PositiveBigIntegerField(default=0)
    reported_revenue = models.DecimalField(**MONEY, default=Decimal(0))
    sends = models.PositiveBigIntegerField(default=0, help_text=_("Deliveries handed to the channel."))
    conversions = models.PositiveBigIntegerField(default=0, help_text=_("Orders attributed by Cible."))
    revenue = models.DecimalField(**MONEY, default=Decimal(0), help_text=_("Revenue of the attributed orders."))

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "day"], name="reporting_rollup_ws_day"),
            models.Index(fields=["campaign", "day"], name="reporting_rollup_campaign_day"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.target_id}/{self.channel} {self.day}"


class RollupState(models.Model):
    """Where the workspace's roll-up stands: data changed after the watermark is not in it yet."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="rollup_state")
    watermark = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_full_at = models.DateTimeField(null=True, blank=True)
    last_stats = models.JSONField(default=dict, blank=True)
    attributed_with = models.JSONField(
        default=dict, blank=True, help_text=_("The windows of the last full attribution; new ones attribute again.")
    )

    def __str__(self) -> str:
        return f"roll-up of {self.workspace_id} up to {self.watermark}"


class ReportJob(LeasedJob):
    """A report computed by a worker into a CSV file, then downloaded."""

    # A report file in the making holds a lease; the roll-up needs none: it runs in one transaction
    # under the workspace's row lock, which PostgreSQL releases the moment a killed worker's
    # connection drops, and its next tick (beat, every 15 minutes) does it again.
    lease_jobs = "report files"
    lease_task = "reporting.tasks.report_job_task"

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="report_jobs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    parameters = models.JSONField(default=dict)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    rows = models.PositiveIntegerField(null=True, blank=True)
    file = models.FileField(upload_to="reports/%Y/%m/", blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"report {self.pk} ({self.status})"


class PerformanceDashboard(DailyRollup):
    """The admin's entry to the performance dashboard (the roll-up, seen as a dashboard)."""

    class Meta:
        proxy = True
        verbose_name = "performance dashboard"
        verbose_name_plural = "performance dashboard"
