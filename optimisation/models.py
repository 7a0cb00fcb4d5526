"""Automated rules and their evaluations: acting on a campaign from its results.

This app sits above campaigns and reporting: it reads the reports and changes campaigns.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Workspace
from campaigns.models import MONEY, Campaign
from core.models import AppendOnlyModel, AppendOnlyQuerySet, WorkspaceFromParent
from reporting.models import ConversionBasis


class Rule(models.Model):
    """An automated rule: when every condition holds over its look-back window, act on the campaign.

    A rule without a campaign applies to each active or paused campaign of the workspace.
    """

    class Action(models.TextChoices):
        PAUSE = "pause", _("Pause the campaign")
        CANCEL = "cancel", _("Cancel the campaign")
        RESUME = "resume", _("Resume the campaign")
        BUDGET_PERCENT = "budget_percent", _("Change the budget by a percentage")
        BUDGET_AMOUNT = "budget_amount", _("Change the budget by an amount")
        NOTIFY = "notify", _("Notify only")
        REALLOCATE = "reallocate", _("Move budget shares to the best targets")

    class Schedule(models.TextChoices):
        EVERY_30_MINUTES = "30min", _("Every 30 minutes")
        HOURLY = "hourly", _("Hourly")
        DAILY = "daily", _("Daily")

    Basis = ConversionBasis

    class BudgetField(models.TextChoices):
        TOTAL = "total", _("Total budget")
        DAILY = "daily", _("Daily budget")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="rules")
    campaign = models.ForeignKey(
        Campaign,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="rules",
        help_text=_("Empty: every active or paused campaign of the workspace."),
    )
    name = models.CharField(max_length=120)
    enabled = models.BooleanField(default=True)
    conditions = models.JSONField(
        default=list,
        help_text=_('All must hold, e.g. [{"kpi": "roas", "days": 7, "operator": "lt", "threshold": "1.5"}].'),
    )
    basis = models.CharField(max_length=10, choices=Basis.choices, default=Basis.ATTRIBUTED)
    min_impressions = models.PositiveBigIntegerField(
        default=0, help_text=_("Guard: do nothing before the look-back window has this many impressions.")
    )
    min_spend = models.DecimalField(
        **MONEY, default=Decimal(0), validators=[MinValueValidator(Decimal(0))], help_text=_("Guard: or this spend.")
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    budget_field = models.CharField(max_length=5, choices=BudgetField.choices, default=BudgetField.TOTAL)
    change_percent = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(-100)), MaxValueValidator(Decimal(1000))],
        help_text=_("e.g. -20 to cut the budget by a fifth."),
    )
    change_amount = models.DecimalField(**MONEY, null=True, blank=True, help_text=_("Signed, e.g. -500."))
    budget_min = models.DecimalField(
        **MONEY, null=True, blank=True, validators=[MinValueValidator(Decimal(0))], help_text=_("Never below this.")
    )
    budget_max = models.DecimalField(
        **MONEY, null=True, blank=True, validators=[MinValueValidator(Decimal(0))], help_text=_("Never above this.")
    )
    reallocation_metric = models.CharField(
        max_length=16,
        choices=[
            ("roas", "ROAS"),
            ("cpa", "CPA"),
            ("incremental_roas", _("Incremental ROAS (revenue caused, against the control group)")),
        ],
        default="roas",
        blank=True,
    )
    min_share = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal(10),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))],
        help_text=_("Reallocation: no target gets less, in percent."),
    )
    learning_conversions = models.PositiveIntegerField(
        default=5, help_text=_("Reallocation: a target with fewer conversions is still learning and keeps its share.")
    )
    notify_url = models.URLField(blank=True, max_length=500, help_text=_("A webhook told of each action (signed)."))
    notify_secret = models.CharField(max_length=200, blank=True)
    notify_email = models.EmailField(blank=True)
    schedule = models.CharField(max_length=6, choices=Schedule.choices, default=Schedule.HOURLY)
    next_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("automated rule")
        verbose_name_plural = _("automated rules")
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="optimisation_rule_name_unique")]
        indexes = [models.Index(fields=["enabled", "next_run_at"], name="optimisation_rule_due")]
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


# What a user sets on a rule (the API and the admin edit these), in the order forms show them.
RULE_CONDITION_FIELDS = ["conditions", "basis", "min_impressions", "min_spend", "schedule"]
RULE_ACTION_FIELDS = [
    "action",
    "budget_field",
    "change_percent",
    "change_amount",
    "budget_min",
    "budget_max",
    "reallocation_metric",
    "min_share",
    "learning_conversions",
    "notify_url",
    "notify_secret",
    "notify_email",
]
RULE_FIELDS = ["campaign", "name", "enabled", *RULE_CONDITION_FIELDS, *RULE_ACTION_FIELDS]


class RuleEvaluation(WorkspaceFromParent, AppendOnlyModel):
    """One evaluation of a rule on one campaign: what it saw and what it did."""

    class Outcome(models.TextChoices):
        ACTED = "acted", _("Acted")
        NOT_MET = "not_met", _("Conditions not met")
        GUARDED = "guarded", _("Not enough data (guard)")
        NO_CHANGE = "no_change", _("Met, nothing to change")
        FAILED = "failed", _("Failed")

    workspace_parent = "rule"
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="evaluations")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="rule_evaluations")
    at = models.DateTimeField()
    source = models.CharField(max_length=10, help_text=_("schedule or manual."))
    seen = models.JSONField(default=dict, help_text=_("The figures of each condition's window."))
    matched = models.BooleanField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    action = models.CharField(max_length=16, choices=Rule.Action.choices)
    detail = models.TextField(blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["rule", "at"], name="optimisation_ruleeval_rule")]

    def __str__(self) -> str:
        return f"{self.rule} on {self.campaign}: {self.outcome}"
