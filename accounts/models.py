import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.errors import AccountErrorCode


class Role(models.TextChoices):
    VIEWER = "viewer", _("Viewer")
    MARKETER = "marketer", _("Marketer")
    MANAGER = "manager", _("Manager")
    PRIVACY_OFFICER = "privacy_officer", _("Privacy officer")
    ADMIN = "admin", _("Admin")


class Currency(models.TextChoices):
    EUR = "EUR", _("Euro")
    USD = "USD", _("US dollar")
    GBP = "GBP", _("Pound sterling")
    CHF = "CHF", _("Swiss franc")
    CAD = "CAD", _("Canadian dollar")
    JPY = "JPY", _("Yen")
    SEK = "SEK", _("Swedish krona")
    DKK = "DKK", _("Danish krone")
    NOK = "NOK", _("Norwegian krone")
    PLN = "PLN", _("Zloty")


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            "%(value)s is not a known IANA time zone.", code=AccountErrorCode.INVALID_TIME_ZONE, params={"value": value}
        )


class WorkspaceQuerySet(models.QuerySet["Workspace"]):
    def for_user(self, user) -> "WorkspaceQuerySet":
        """Workspaces the user is a member of (all of them for a superuser)."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self
        return self.filter(memberships__user=user).distinct()


class Workspace(models.Model):
    """One brand or advertiser: every business row belongs to exactly one."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(
        max_length=60,
        unique=True,
        validators=[RegexValidator(r"^[a-z0-9][a-z0-9-]*$", "Use lower-case letters, digits and hyphens.")],
    )
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.EUR)
    time_zone = models.CharField(max_length=64, default="Europe/Paris", validators=[validate_time_zone])
    country = models.CharField(
        max_length=2,
        default="FR",
        validators=[RegexValidator(r"^[A-Z]{2}$", "Use an ISO 3166-1 alpha-2 code, e.g. FR.")],
        help_text=_("Home market: the default region for phone numbers written without a country code."),
    )
    language = models.CharField(
        max_length=8,
        choices=[("fr", "Français"), ("en", "English")],
        default="fr",
        help_text=_(
            "The language of what Cible writes for the workspace without a reader: e-mails of automated rules."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "workspace"], name="accounts_membership_one_per_user_workspace"),
        ]
        ordering = ["workspace", "user"]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} as {self.get_role_display()}"
