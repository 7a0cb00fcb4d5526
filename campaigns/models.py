"""Campaigns: targets with their message, the lifecycle, budgets and the spend ledger, touches.

Money is an exact decimal with two places in the campaign's currency, never a float.
"""

from decimal import Decimal
from typing import TypedDict

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import Currency, Workspace
from campaigns.errors import CampaignErrorCode
from campaigns.querysets import CampaignQuerySet, TargetQuerySet
from core.models import AppendOnlyModel, AppendOnlyQuerySet, WorkspaceFromParent
from core.personal_data import PersonalData
from customers.models import Channel, Event, Profile
from privacy.models import ConsentPurpose
from segments.models import Segment


class MoneyDigits(TypedDict):
    max_digits: int
    decimal_places: int


# Every amount of money: exact decimals, cents, up to a trillion.
MONEY: MoneyDigits = {"max_digits": 14, "decimal_places": 2}


class CampaignChannel(models.TextChoices):
    """The channels a campaign can deliver on (values shared with events and consent)."""

    EMAIL = Channel.EMAIL.value, _("E-mail")
    SMS = Channel.SMS.value, _("SMS")
    PUSH = Channel.PUSH.value, _("Push notification")
    SOCIAL = Channel.SOCIAL.value, _("Social")
    DISPLAY = Channel.DISPLAY.value, _("Display")
    SEARCH = Channel.SEARCH.value, _("Search")
    POST = Channel.POST.value, _("Direct mail")
    STORE = Channel.STORE.value, _("In-store")


# The consent a delivery on each channel needs: direct marketing, or ad targeting for paid media.
CHANNEL_PURPOSE: dict[str, str] = {
    CampaignChannel.EMAIL: ConsentPurpose.DIRECT_MARKETING,
    CampaignChannel.SMS: ConsentPurpose.DIRECT_MARKETING,
    CampaignChannel.PUSH: ConsentPurpose.DIRECT_MARKETING,
    CampaignChannel.POST: ConsentPurpose.DIRECT_MARKETING,
    CampaignChannel.STORE: ConsentPurpose.DIRECT_MARKETING,
    CampaignChannel.SOCIAL: ConsentPurpose.AD_TARGETING,
    CampaignChannel.DISPLAY: ConsentPurpose.AD_TARGETING,
    CampaignChannel.SEARCH: ConsentPurpose.AD_TARGETING,
}


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")

    class Objective(models.TextChoices):
        AWARENESS = "awareness", _("Awareness (reach)")
        TRAFFIC = "traffic", _("Traffic")
        ENGAGEMENT = "engagement", _("Engagement")
        CONVERSION = "conversion", _("Conversion (sales)")
        RETENTION = "retention", _("Retention and loyalty")
        REACTIVATION = "reactivation", _("Win-back")

    class Pacing(models.TextChoices):
        EVEN = "even", _("Even: the remaining budget spread over the remaining days")
        ASAP = "asap", _("As fast as possible, within the daily cap")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=120)
    objective = models.CharField(max_length=16, choices=Objective.choices, default=Objective.CONVERSION)
    channels = models.JSONField(default=list, help_text=_('Channels it delivers on, e.g. ["email", "sms"].'))
    channel_choice = models.CharField(
        _("channel choice"),
        max_length=10,
        choices=[
            ("every", _("Every channel the person consents to")),
            ("preferred", _("Only the person's preferred channel among those they consent to")),
        ],
        default="every",
        help_text=_(
            "Preferred: each person gets one delivery, on the channel of the campaign they respond to best "
            "(their channel preference), among the ones they consent to."
        ),
    )
    starts_at = models.DateTimeField(help_text=_("Entered in the workspace's time zone, stored in UTC."))
    ends_at = models.DateTimeField()
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, editable=False)
    currency = models.CharField(max_length=3, choices=Currency.choices)
    budget_total = models.DecimalField(**MONEY, null=True, blank=True, validators=[MinValueValidator(Decimal(0))])
    budget_daily = models.DecimalField(**MONEY, null=True, blank=True, validators=[MinValueValidator(Decimal(0))])
    pacing = models.CharField(max_length=4, choices=Pacing.choices, default=Pacing.EVEN)
    holdout_percent = models.DecimalField(
        max_digits=4,
        decimal_places=1,
        default=Decimal(0),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(50))],
        help_text=_(
            "A control group: this share of every target's audience (0 to 50 %) is never contacted, so the "
            "campaign's results can be read against it (uplift). Each person's place is drawn from their id and the "
            "campaign's, so it never changes."
        ),
    )
    spent = models.DecimalField(**MONEY, default=Decimal(0), editable=False, help_text=_("Sum of the spend ledger."))
    activated_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CampaignQuerySet.as_manager()

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="campaigns_campaign_name_unique"),
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="campaigns_ends_after_start"),
            # The ledger's lock keeps spend within the caps; the database refuses anything else.
            models.CheckConstraint(
                condition=Q(budget_total__isnull=True) | Q(spent__lte=models.F("budget_total")),
                name="campaigns_spent_within_total",
            ),
            # clean() says it in words (daily_above_total); the database holds it for every writer.
            models.CheckConstraint(
                condition=Q(budget_total__isnull=True)
                | Q(budget_daily__isnull=True)
                | Q(budget_daily__lte=models.F("budget_total")),
                name="campaigns_daily_within_total",
            ),
        ]
        indexes = [models.Index(fields=["workspace", "status", "starts_at"], name="campaigns_ws_status_start")]
        ordering = ["-starts_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_final(self) -> bool:
        return self.status in (self.Status.COMPLETED, self.Status.CANCELLED)

    def clean(self) -> None:
        super().clean()
        daily_above_total(total=self.budget_total, daily=self.budget_daily, field="budget_daily")


def daily_above_total(*, total: Decimal | None, daily: Decimal | None, field: str) -> None:
    """A daily cap above the total cap means nothing: refuse it."""
    if total is not None and daily is not None and daily > total:
        raise ValidationError(
            {
                field: ValidationError(
                    gettext("The daily budget (%(daily)s) is above the total budget (%(total)s).")
                    % {"daily": daily, "total": total},
                    code=CampaignErrorCode.DAILY_ABOVE_TOTAL,
                )
            }
        )


def shares_over_100(shares: list[Decimal | None]) -> ValidationError | None:
    """Target budget shares are percentages of the campaign's budget: together at most 100."""
    total = sum((share or Decimal(0)) for share in shares)
    if total > 100:
        return ValidationError(
            gettext("The targets' budget shares add up to %(total)s %%, more than 100 %%.") % {"total": total},
            code=CampaignErrorCode.OVER_100,
        )
    return None


# What a marketer sets on a target (the API and the admin edit these).
TARGET_FIELDS = [
    "segment",
    "mode",
    "min_probability",
    "variant",
    "subject_template",
    "body_template",
    "discount_code",
    "discount_percent",
    "budget_share",
    "restriction",
    "trigger_event",
    "trigger_properties",
    "trigger_delay",
    "split_weight",
]


class Target(WorkspaceFromParent, models.Model):
    """A segment's audience in a campaign, with its mode, its message or offer, its budget share and area."""

    class Mode(models.TextChoices):
        MACRO = "macro", _("Macro-segment (reach)")
        FINE = "fine", _("Fine segment (membership probability)")

    workspace_parent = "campaign"
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="targets")
    segment = models.ForeignKey(
        Segment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="targets",
        help_text=_("Empty only for a triggered target: anyone who does the trigger event."),
    )
    mode = models.CharField(max_length=5, choices=Mode.choices, default=Mode.MACRO)
    min_probability = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))],
        help_text=_("Fine mode: the minimum membership probability."),
    )
    variant = models.CharField(max_length=60, default="A", help_text=_("The name of the message or offer variant."))
    subject_template = models.CharField(max_length=300, blank=True)
    body_template = models.TextField(
        blank=True,
        help_text=_(
            "Tokens: {{first_name}}, {{last_name}}, {{city}}, {{last_product_viewed}}, {{discount_code}}, {{discount_percent}}, and for a triggered send {{event.<property>}}."
        ),
    )
    discount_code = models.CharField(max_length=40, blank=True)
    discount_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
    )
    budget_share = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
        help_text=_("Share of the campaign budget, in percent (0 to 100); the targets' shares add up to 100 at most."),
    )
    restriction = models.JSONField(
        null=True,
        blank=True,
        help_text=_(
            'Optional area, in the rule language\'s geographic criteria, e.g. {"field": "region", "op": "eq", "value": "Bretagne"} or {"geo": {"near": [48.85, 2.35], "km": 10}}.'
        ),
    )
    # A triggered target sends when the event happens, after the delay (e.g. cart_abandoned, 2 h).
    trigger_event = models.CharField(max_length=32, blank=True)
    trigger_properties = models.JSONField(default=dict, blank=True, help_text=_("Properties the event must have."))
    trigger_delay = models.DurationField(null=True, blank=True)
    split_weight = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_(
            "A/B test: targets of the campaign on the same segment with a weight share its audience, each "
            "person in one of them in proportion to the weights (e.g. 50 and 50). Without a weight, a target reaches "
            "its whole audience (less the control group)."
        ),
    )
    activated_version = models.PositiveIntegerField(
        default=0, editable=False, help_text=_("The audience version whose deliveries were last decided.")
    )

    objects = TargetQuerySet.as_manager()

    class Meta:
        verbose_name = _("target")
        verbose_name_plural = _("targets")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(segment__isnull=False) | ~Q(trigger_event=""), name="campaigns_target_has_audience"
            )
        ]

    def __str__(self) -> str:
        who = self.segment.name if self.segment is not None else f"on {self.trigger_event}"
        return f"{who} ({self.variant})"


class Transition(WorkspaceFromParent, AppendOnlyModel):
    """One change of a campaign's state: who, when, why, from and to."""

    workspace_parent = "campaign"
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=10, choices=Campaign.Status.choices)
    to_status = models.CharField(max_length=10, choices=Campaign.Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=20, help_text=_("admin, api, schedule or rule."))
    reason = models.TextField(blank=True)
    at = models.DateTimeField()

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.campaign}: {self.from_status} -> {self.to_status}"


class LedgerEntry(AppendOnlyModel):
    """Spend and budget changes, append-only. A retried notice carries the same key and counts once."""

    class Kind(models.TextChoices):
        SPEND = "spend", _("Spend")
        BUDGET_TOTAL = "budget_total", _("Total budget change")
        BUDGET_DAILY = "budget_daily", _("Daily budget change")
        BUDGET_SHARE = "budget_share", _("Budget share moved between targets")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="ledger")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount = models.DecimalField(**MONEY, help_text=_("Spend, or the change of the budget (new - old)."))
    balance = models.DecimalField(**MONEY, null=True, blank=True, help_text=_("Budget changes: the new budget."))
    currency = models.CharField(max_length=3, choices=Currency.choices)
    target = models.ForeignKey(Target, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.CharField(max_length=16, choices=CampaignChannel.choices, blank=True)
    day = models.DateField(help_text=_("The day of the spend, in the workspace's time zone."))
    occurred_at = models.DateTimeField()
    idempotency_key = models.CharField(max_length=128)
    source = models.CharField(max_length=40, blank=True)
    reason = models.TextField(blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "campaign", "idempotency_key"], name="campaigns_ledger_key_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "kind", "day"], name="campaigns_ledger_day"),
            models.Index(fields=["workspace", "recorded_at"], name="campaigns_ledger_recorded"),
        ]
        ordering = ["-recorded_at", "-id"]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} {self.currency}"


class FrequencyCap(models.Model):
    """At most N touches per person in a sliding window, across all the workspace's campaigns."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="frequency_caps")
    channel = models.CharField(
        max_length=16, choices=CampaignChannel.choices, blank=True, help_text=_("Empty: every channel together.")
    )
    max_touches = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    window = models.DurationField(help_text=_("e.g. 7 days."))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "channel", "window"], name="campaigns_freqcap_unique")
        ]

    def __str__(self) -> str:
        return f"{self.max_touches} per {self.window} on {self.channel or 'all channels'}"


class Touch(models.Model):
    """One delivery to one person: the record behind frequency caps and attribution."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending hand-off")
        SENT = "sent", _("Handed to the channel")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="touches", db_index=False)
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="touches", db_index=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+", db_index=False)
    channel = models.CharField(max_length=16, choices=CampaignChannel.choices)
    variant = models.CharField(max_length=60)
    event = models.ForeignKey(
        Event,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        help_text=_("The event that triggered it, for a triggered send."),
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(help_text=_("When the delivery was decided: it counts for frequency caps."))
    sent_at = models.DateTimeField(null=True, blank=True)
    sent_day = models.DateField(
        null=True, blank=True, help_text=_("The day it was sent, in the workspace's time zone.")
    )
    handoff = models.ForeignKey(
        "campaigns.Handoff",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        help_text=_("The batch that carried it: where the person's data went."),
    )

    personal_data = PersonalData(
        category="Campaign deliveries",
        fields=("campaign", "target", "channel", "variant", "status", "sent_at", "handoff"),
        purposes=("Delivering campaigns", "Frequency caps", "Attribution and reporting"),
        legal_basis="consent",
        retention="As long as the campaign; counted in the reports.",
        erasure="Kept without identity (the profile is emptied); pending ones are cancelled.",
    )

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "profile", "created_at"], name="campaigns_touch_frequency"),
            models.Index(fields=["campaign", "status", "channel"], name="campaigns_touch_handoff"),
            models.Index(fields=["target", "profile"], name="campaigns_touch_target"),
            # attribution (a person's deliveries before an order) and the incremental roll-up
            models.Index(fields=["profile", "sent_at"], name="campaigns_touch_profile_sent"),
            models.Index(fields=["workspace", "sent_day"], name="campaigns_touch_ws_sent_day"),
        ]
        verbose_name_plural = "touches"

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.target_id} -> {self.profile_id} ({self.status})"


class Connector(models.Model):
    """How deliveries reach a channel: a signed webhook, or a CSV file per channel."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", _("Signed webhook (JSON batches, HMAC-SHA256)")
        FILE = "file", _("CSV file per channel")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="connectors")
    channel = models.CharField(max_length=16, choices=CampaignChannel.choices)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    url = models.URLField(blank=True, max_length=500)
    secret = models.CharField(max_length=200, blank=True, help_text=_("Signs each batch; never shown again."))
    batch_size = models.PositiveIntegerField(default=500, validators=[MinValueValidator(1), MaxValueValidator(10000)])
    timeout_seconds = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1), MaxValueValidator(120)])
    max_attempts = models.PositiveIntegerField(default=5, validators=[MinValueValidator(1), MaxValueValidator(20)])
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "channel"], name="campaigns_connector_channel")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.channel}"


class Handoff(models.Model):
    """A batch of touches handed to a connector: the webhook call or the file, its attempts and outcome."""

    class Status(models.TextChoices):
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="handoffs")
    channel = models.CharField(max_length=16, choices=CampaignChannel.choices)
    kind = models.CharField(max_length=8, choices=Connector.Kind.choices)
    touches = models.PositiveIntegerField()
    attempts = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=8, choices=Status.choices)
    error = models.TextField(blank=True)
    file = models.FileField(upload_to="deliveries/%Y/%m/", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    personal_data = PersonalData(
        category="Delivery files (identifiers and rendered messages)",
        fields=("file",),
        purposes=("Handing deliveries to a channel",),
        legal_basis="consent",
        retention="export_files_days",
        erasure="The person's rows are removed from every file.",
        recipients=("The channel's sending service",),
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "hand-off"

    def __str__(self) -> str:
        return f"{self.touches} {self.channel} deliveries ({self.status})"


class PendingSend(models.Model):
    """A triggered send waiting for its delay; a purchase meanwhile cancels it."""

    class Status(models.TextChoices):
        WAITING = "waiting", _("Waiting for the delay")
        SENT = "sent", _("Sent")
        CANCELLED = "cancelled", _("Cancelled")
        SKIPPED = "skipped", _("Skipped (consent, frequency cap or campaign status)")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="pending_sends", db_index=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+", db_index=False)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+", db_index=False)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    personal_data = PersonalData(
        category="Triggered sends waiting for their delay",
        fields=("target", "profile", "event", "due_at", "status"),
        purposes=("Triggered campaigns (e.g. cart abandoned, then an offer)",),
        legal_basis="consent",
        retention="As long as the campaign.",
        erasure="Cancelled.",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "target", "event"], name="campaigns_pending_once")]
        indexes = [
            models.Index(fields=["status", "due_at"], name="campaigns_pending_due"),
            models.Index(fields=["profile", "status"], name="campaigns_pending_profile"),
        ]

    def __str__(self) -> str:
        return f"{self.target_id} -> {self.profile_id} at {self.due_at} ({self.status})"


class ChannelPreference(models.Model):
    """How a person responds on each channel over a window: deliveries received, responses (opens,
    clicks, purchases within a week of a delivery), a smoothed rate, and the channel's rank for
    them (1: their preferred channel). Computed set-based (campaigns.preferences)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+", db_index=False)
    channel = models.CharField(_("channel"), max_length=16, choices=CampaignChannel.choices)
    touches = models.PositiveIntegerField(_("deliveries"))
    responses = models.PositiveIntegerField(_("responses"))
    score = models.FloatField(_("response rate"), help_text=_("(responses + 1) / (deliveries + 2)"))
    rank = models.PositiveSmallIntegerField(_("rank"), help_text=_("1: the person's preferred channel."))
    computed_at = models.DateTimeField(_("computed at"))

    personal_data = PersonalData(
        category="Derived behavioural data (channel responsiveness)",
        fields=("channel", "touches", "responses", "score", "rank"),
        purposes=("Choosing the channel a person responds to",),
        legal_basis="consent (profiling) or legitimate interests",
        retention="Replaced at each computation; as long as the profile.",
        erasure="Deleted.",
    )

    class Meta:
        verbose_name = _("channel preference")
        verbose_name_plural = _("channel preferences")
        constraints = [
            models.UniqueConstraint(fields=["workspace", "profile", "channel"], name="campaigns_channelpref_unique")
        ]
        indexes = [models.Index(fields=["workspace", "rank", "channel"], name="campaigns_channelpref_rank")]

    def __str__(self) -> str:
        return f"{self.profile_id} {self.channel} #{self.rank}"
