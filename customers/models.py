"""The customer 360 view: profiles and their four facets, identities, events,
orders and survey answers. The consent history lives in the privacy app.

Indexes put `workspace_id` first: every query is scoped to one workspace, and the
segment compiler filters profiles by facet and events/orders by type and time.
"""

from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import Currency, Workspace
from core.errors import CommonErrorCode
from core.leases import LeasedJob
from core.personal_data import PersonalData
from customers.errors import CustomerErrorCode
from customers.querysets import ProfileQuerySet


class Channel(models.TextChoices):
    WEB = "web", _("Web site")
    APP = "app", _("Mobile app")
    EMAIL = "email", _("E-mail")
    SMS = "sms", _("SMS")
    PUSH = "push", _("Push notification")
    PHONE = "phone", _("Phone")
    POST = "post", _("Direct mail")
    STORE = "store", _("Store")
    SOCIAL = "social", _("Social")
    DISPLAY = "display", _("Display")
    SEARCH = "search", _("Search")
    CALL_CENTER = "call_center", _("Customer service")


class Gender(models.TextChoices):
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", _("Other")
    UNKNOWN = "unknown", _("Unknown")


class SocioProfessionalCategory(models.TextChoices):
    """INSEE PCS groups, with students apart from other non-working people."""

    FARMER = "farmer", _("Farmer")
    CRAFTS_TRADE_BUSINESS = "crafts_trade_business", _("Craftsman, shopkeeper, business owner")
    EXECUTIVE = "executive", _("Executive, higher intellectual profession")
    INTERMEDIATE = "intermediate", _("Intermediate profession")
    EMPLOYEE = "employee", _("Employee")
    WORKER = "worker", _("Manual worker")
    RETIRED = "retired", _("Retired")
    STUDENT = "student", _("Student")
    OTHER_INACTIVE = "other_inactive", _("Other without professional activity")


class LifecycleStage(models.TextChoices):
    PROSPECT = "prospect", _("Prospect")
    CUSTOMER = "customer", _("Customer")


class EventType(models.TextChoices):
    PAGE_VIEW = "page_view", _("Page view")
    PRODUCT_VIEW = "product_view", _("Product view")
    SEARCH = "search", _("Search")
    ADD_TO_CART = "add_to_cart", _("Add to cart")
    CART_ABANDONED = "cart_abandoned", _("Cart abandoned")
    CHECKOUT_STARTED = "checkout_started", _("Checkout started")
    PURCHASE = "purchase", _("Purchase")
    CUSTOMER_SERVICE_CONTACT = "customer_service_contact", _("Customer-service contact")
    EMAIL_OPEN = "email_open", _("E-mail open")
    EMAIL_CLICK = "email_click", _("E-mail click")
    SMS_CLICK = "sms_click", _("SMS click")
    PUSH_OPEN = "push_open", _("Push open")
    AD_VIEW = "ad_view", _("Ad view")
    AD_CLICK = "ad_click", _("Ad click")
    APP_OPEN = "app_open", _("App open")
    STORE_VISIT = "store_visit", _("Store visit")
    SURVEY_RESPONSE = "survey_response", _("Survey response")


class IdentityType(models.TextChoices):
    EMAIL = "email", _("E-mail")
    PHONE = "phone", _("Phone")
    COOKIE = "cookie", _("Cookie id")
    DEVICE = "device", _("Device id")
    CRM = "crm", _("CRM id")
    LOYALTY = "loyalty", _("Loyalty card")
    EMAIL_SHA256 = "email_sha256", _("Hashed e-mail (SHA-256)")


class MatchStrength(models.TextChoices):
    """How an identifier type stitches profiles at ingestion (customers.stitching)."""

    DETERMINISTIC = "deterministic", _("Deterministic: merges any two profiles")
    WEAK = "weak", _("Weak: joins an anonymous profile, never two known people")
    IGNORED = "ignored", _("Ignored: recorded, never used to stitch")


class AttributeType(models.TextChoices):
    STRING = "string", _("Text")
    NUMBER = "number", _("Number")
    BOOLEAN = "boolean", _("Yes / no")
    DATE = "date", _("Date")
    STRING_LIST = "string_list", _("List of texts")


key_validator = RegexValidator(r"^[a-z][a-z0-9_]{0,62}$", "Use lower-case letters, digits and underscores.")


# A profile's own fields, written once: the API, imports, merges and the records of processing use them.
PROFILE_CONTACT_FIELDS = ("first_name", "last_name", "email", "phone")
PROFILE_FACET_FIELDS = (
    "birth_date",
    "gender",
    "socio_professional_category",
    "city",
    "postal_code",
    "region",
    "country",
    "latitude",
    "longitude",
)
PROFILE_FIELDS = ("external_id", "lifecycle_stage", *PROFILE_CONTACT_FIELDS, *PROFILE_FACET_FIELDS, "attributes")


class Profile(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="profiles", db_index=False)
    external_id = models.CharField(max_length=128, help_text=_("The id of this person in the sending system."))
    lifecycle_stage = models.CharField(max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.PROSPECT)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    email = models.EmailField(max_length=254, blank=True)
    phone = models.CharField(max_length=32, blank=True, help_text="E.164")
    # Demographic facet
    birth_date = models.DateField(null=True, blank=True)
    gender = models.CharField(max_length=10, choices=Gender.choices, default=Gender.UNKNOWN)
    socio_professional_category = models.CharField(max_length=32, choices=SocioProfessionalCategory.choices, blank=True)
    # Geographic facet
    city = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=16, blank=True)
    region = models.CharField(max_length=100, blank=True)
    country = models.CharField(
        max_length=2, blank=True, validators=[RegexValidator(r"^[A-Z]{2}$", "ISO 3166-1 alpha-2")]
    )
    latitude = models.FloatField(null=True, blank=True, validators=[MinValueValidator(-90), MaxValueValidator(90)])
    longitude = models.FloatField(null=True, blank=True, validators=[MinValueValidator(-180), MaxValueValidator(180)])
    # Attitudinal facet: typed custom attributes (see AttributeDefinition)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    erased_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text=_("Set when erased: the row stays, empty, for the aggregates.")
    )
    anonymous = models.BooleanField(
        _("anonymous"),
        default=False,
        db_default=False,  # rows written by COPY or raw SQL (bulk loads) are known people
        help_text=_(
            "Known only by a cookie, a device or another weak identifier: no id from the sending system and no "
            "e-mail, phone, loyalty card or customer id yet."
        ),
    )

    objects = ProfileQuerySet.as_manager()
    personal_data = PersonalData(
        category="Identity, contact, demographic, geographic and attitudinal data",
        fields=tuple(name for name in PROFILE_FIELDS if name != "lifecycle_stage"),
        purposes=("Customer relationship", "Segmentation and campaign targeting within the consent given"),
        legal_basis="contract (customers), consent or legitimate interests (prospects)",
        retention="inactive_prospect_months",
        erasure="Emptied: every field is cleared and the row stays, without identity, for the aggregates.",
    )

    class Meta:
        verbose_name = _("profile")
        verbose_name_plural = _("profiles")
        constraints = [
            models.UniqueConstraint(fields=["workspace", "external_id"], name="customers_profile_external_id_unique"),
            models.CheckConstraint(
                condition=Q(latitude__isnull=True, longitude__isnull=True)
                | Q(latitude__isnull=False, longitude__isnull=False),
                name="customers_profile_coordinates_both_or_none",
                violation_error_code=CustomerErrorCode.COORDINATES_PAIR,
                violation_error_message="Give latitude and longitude together.",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "birth_date"], name="customers_profile_ws_birth"),
            models.Index(fields=["workspace", "gender"], name="customers_profile_ws_gender"),
            models.Index(fields=["workspace", "socio_professional_category"], name="customers_profile_ws_csp"),
            models.Index(fields=["workspace", "region"], name="customers_profile_ws_region"),
            models.Index(fields=["workspace", "country", "city"], name="customers_profile_ws_city"),
            models.Index(fields=["workspace", "postal_code"], name="customers_profile_ws_postal"),
            models.Index(fields=["workspace", "latitude", "longitude"], name="customers_profile_ws_geo"),
            models.Index(fields=["workspace", "email"], name="customers_profile_ws_email"),
            models.Index(fields=["workspace", "lifecycle_stage"], name="customers_profile_ws_stage"),
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return f"{name or self.external_id}"

    @property
    def age(self) -> int | None:
        return age_of(self.birth_date)


def age_of(birth_date: date | None) -> int | None:
    """Age in whole years today (None without a birth date)."""
    if birth_date is None:
        return None
    today = date.today()
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


# Closed answers of a survey question, values of a text attribute: at most this many, each labelled.
MAX_OPTIONS = 200
MAX_OPTION_TEXT = 200


def validate_options(options: object, *, texts_only: bool) -> None:
    """`[{"value": "app", "label": "Application mobile"}, ...]`: distinct values, each with its label.

    Declared values are what aggregates may show of the data (customers.selectors.value_labels):
    a team's own vocabulary, never one person's words."""

    def refuse(message: str) -> None:
        raise ValidationError({"options": ValidationError(message, code=CommonErrorCode.INVALID)})

    if not isinstance(options, list) or len(options) > MAX_OPTIONS:
        refuse(f"Expected a list of at most {MAX_OPTIONS} options.")
    seen = set()
    items: list = options  # type: ignore[assignment]  # a list, checked above
    for n, option in enumerate(items):
        if not isinstance(option, dict) or set(option) != {"value", "label"}:
            refuse(f"Option {n + 1}: expected an object with a value and a label.")
        value, label = option["value"], option["label"]
        scalar = isinstance(value, str) or (not texts_only and isinstance(value, (int, float, bool)))
        if not scalar or (isinstance(value, str) and not 0 < len(value) <= MAX_OPTION_TEXT):
            kinds = "a text" if texts_only else "a text, a number or yes/no"
            refuse(f"Option {n + 1}: the value must be {kinds} (texts of 1 to {MAX_OPTION_TEXT} characters).")
        if not isinstance(label, str) or not 0 < len(label.strip()) <= MAX_OPTION_TEXT:
            refuse(f"Option {n + 1}: the label must be a text of 1 to {MAX_OPTION_TEXT} characters.")
        key = (type(value) is bool, value)
        if key in seen:
            raise ValidationError(
                {
                    "options": ValidationError(
                        gettext("Option %(value)s: the value %(value2)s is listed twice.")
                        % {"value": n + 1, "value2": repr(value)},
                        code=CustomerErrorCode.DUPLICATE_OPTION,
                    )
                }
            )
        seen.add(key)


class AttributeDefinition(models.Model):
    """Declares a custom attribute and its type; profile attributes must match one."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="attribute_definitions", db_index=False
    )
    key = models.CharField(max_length=63, validators=[key_validator])
    label = models.CharField(max_length=120)
    type = models.CharField(max_length=16, choices=AttributeType.choices)
    description = models.TextField(blank=True)
    options = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            'The values a text or list attribute takes, with their labels: [{"value": "running", "label": "Course à pied"}]. Analyses show these labels.'
        ),
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="customers_attributedefinition_key_unique")
        ]
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key} ({self.type})"

    def clean(self) -> None:
        validate_options(self.options, texts_only=True)


class SurveyQuestion(models.Model):
    """A survey question as the team wrote it: its wording and its closed answers, labelled.

    Analyses show answers by these labels; an answer that is neither declared here nor shared by
    enough people (core.personal_data.AGGREGATE_FLOOR) never appears in an aggregate."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    survey = models.CharField(max_length=63, validators=[key_validator])
    question = models.CharField(max_length=63, validators=[key_validator])
    label = models.CharField(max_length=MAX_OPTION_TEXT, help_text=_("The question as people read it."))
    options = models.JSONField(
        default=list,
        blank=True,
        help_text=_('Its closed answers with their labels: [{"value": "app", "label": "Application mobile"}].'),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "survey", "question"], name="customers_surveyquestion_unique")
        ]
        ordering = ["survey", "question"]

    def __str__(self) -> str:
        return f"{self.survey}.{self.question}"

    def clean(self) -> None:
        validate_options(self.options, texts_only=False)


class Identity(models.Model):
    class Source(models.TextChoices):
        PROFILES = "profiles", _("Profile ingestion")
        EVENTS = "events", _("Event ingestion")
        ORDERS = "orders", _("Order ingestion")
        IMPORT = "import", _("CSV import")
        API = "api", _("API or admin")
        MERGE = "merge", _("Merge")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="identities")
    type = models.CharField(max_length=16, choices=IdentityType.choices)
    value = models.CharField(max_length=254, help_text=_("Normalised: e-mails lower-cased, phones in E.164."))
    source = models.CharField(
        _("source"), max_length=10, choices=Source.choices, default=Source.API, db_default=Source.IMPORT
    )
    created_at = models.DateTimeField(_("first seen"), auto_now_add=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    profiles_joined = models.PositiveIntegerField(
        _("profiles joined"),
        default=1,
        db_default=1,
        help_text=_("How many profiles this identifier has been found on and stitched together, its own included."),
    )
    shared = models.BooleanField(
        _("shared"),
        default=False,
        db_default=False,
        help_text=_(
            "Found on more profiles than its type's cap allows (a family tablet, a shared address): it stays "
            "with its profile but no longer stitches."
        ),
    )

    personal_data = PersonalData(
        category="Identifiers (e-mails, phones, cookies, devices, loyalty cards, CRM ids)",
        fields=("type", "value"),
        purposes=("Recognising one person across channels (identity resolution)",),
        legal_basis="legitimate interests",
        retention="As long as the profile.",
        erasure="Deleted.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "type", "value"], name="customers_identity_value_unique"),
        ]
        verbose_name_plural = "identities"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.type}:{self.value}"


# How each identifier type stitches when a workspace has not said otherwise: strength, survivor
# priority (higher survives), and how many profiles one identifier may join.
MATCH_DEFAULTS: dict[str, tuple[str, int, int]] = {
    IdentityType.CRM: (MatchStrength.DETERMINISTIC, 100, 5),
    IdentityType.LOYALTY: (MatchStrength.DETERMINISTIC, 90, 5),
    IdentityType.EMAIL: (MatchStrength.DETERMINISTIC, 80, 5),
    IdentityType.PHONE: (MatchStrength.DETERMINISTIC, 70, 5),
    IdentityType.EMAIL_SHA256: (MatchStrength.DETERMINISTIC, 60, 5),
    IdentityType.DEVICE: (MatchStrength.WEAK, 20, 3),
    IdentityType.COOKIE: (MatchStrength.WEAK, 10, 3),
}


class MatchRule(models.Model):
    """A workspace's rule for one identifier type: does it stitch, who survives, how far it may join."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    type = models.CharField(_("identifier type"), max_length=16, choices=IdentityType.choices)
    strength = models.CharField(_("strength"), max_length=16, choices=MatchStrength.choices)
    priority = models.PositiveSmallIntegerField(
        _("priority"),
        default=50,
        validators=[MaxValueValidator(1000)],
        help_text=_("When profiles merge, the one holding the highest-priority identifier survives (known first)."),
    )
    max_profiles = models.PositiveSmallIntegerField(
        _("most profiles joined"),
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text=_(
            "An identifier found on more profiles than this is shared (a family tablet, a shop's card): it "
            "stops stitching. 1 never merges."
        ),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("match rule")
        verbose_name_plural = _("match rules")
        constraints = [models.UniqueConstraint(fields=["workspace", "type"], name="customers_matchrule_type_unique")]
        ordering = ["-priority", "type"]

    def __str__(self) -> str:
        return f"{self.get_type_display()}: {self.get_strength_display()}"


class ProfileMerge(models.Model):
    """A profile merged into a survivor: by whom or by which rule, from which item, with what it
    brought (its rows are journalled in MergeRow so an unmerge can split them back)."""

    class Reason(models.TextChoices):
        MANUAL = "manual", _("By hand")
        RULE = "rule", _("Match rule at ingestion")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    survivor = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="merges")
    merged_external_id = models.CharField(max_length=128)
    merged_profile_id = models.BigIntegerField()
    merged_at = models.DateTimeField(auto_now_add=True)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(_("reason"), max_length=8, choices=Reason.choices, default=Reason.MANUAL)
    rule_type = models.CharField(
        _("identifier type"),
        max_length=16,
        choices=IdentityType.choices,
        blank=True,
        help_text=_("The rule that merged."),
    )
    source = models.CharField(_("source"), max_length=10, blank=True, help_text=_("The ingestion that merged."))
    item_key = models.CharField(
        _("item"), max_length=64, blank=True, help_text=_("Digest of the idempotency key of the item that merged.")
    )
    moved = models.JSONField(default=dict, help_text=_("How many rows of each kind followed the survivor."))
    merged_snapshot = models.JSONField(
        default=dict, blank=True, help_text=_("The merged profile as it was, to restore it on an unmerge.")
    )
    survivor_snapshot = models.JSONField(
        default=dict, blank=True, help_text=_("The survivor's fields before the merge filled them.")
    )
    unmerged_at = models.DateTimeField(_("unmerged at"), null=True, blank=True)
    unmerged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    personal_data = PersonalData(
        category="Identifiers (merged profiles' external ids) and the merged profile as it was",
        fields=("merged_external_id", "merged_snapshot", "survivor_snapshot"),
        purposes=("Resolving an old external id to the surviving profile", "Splitting a wrong merge back"),
        legal_basis="legitimate interests",
        retention="As long as the surviving profile.",
        erasure="Deleted.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "merged_external_id"],
                condition=Q(unmerged_at__isnull=True),
                name="customers_profilemerge_alias_unique",
            ),
        ]
        ordering = ["-merged_at", "-id"]

    def __str__(self) -> str:
        return f"{self.merged_external_id} -> {self.survivor_id}"


class MergeRow(models.Model):
    """A row that followed the survivor in a merge: an unmerge sends it back. A row dropped as a
    duplicate of the survivor's own keeps its values in `data`, to be written again."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    merge = models.ForeignKey(ProfileMerge, on_delete=models.CASCADE, related_name="+")
    model = models.CharField(max_length=100)
    row_id = models.BigIntegerField()
    data = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["merge", "model"], name="customers_mergerow_merge")]

    def __str__(self) -> str:
        return f"{self.model}#{self.row_id}"


class Event(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="events", db_index=False)
    type = models.CharField(max_length=32, choices=EventType.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    properties = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=128)

    personal_data = PersonalData(
        category="Behavioural data (site, app, store, e-mail and ad interactions)",
        fields=("type", "channel", "occurred_at", "properties"),
        purposes=("Segmentation on behaviour", "Triggered campaigns", "Click attribution"),
        legal_basis="consent (profiling) or legitimate interests",
        retention="events_months",
        erasure="Anonymised: properties and key cleared; type, channel and time stay for the aggregates.",
    )

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        constraints = [
            models.UniqueConstraint(fields=["workspace", "idempotency_key"], name="customers_event_idempotency_unique"),
        ]
        indexes = [
            # "who did X in the window": type and time first, profile to aggregate.
            models.Index(fields=["workspace", "type", "occurred_at", "profile"], name="customers_event_ws_type_time"),
            # one person's timeline, and per-profile windows
            models.Index(fields=["profile", "type", "occurred_at"], name="customers_event_profile_type"),
        ]
        ordering = ["-occurred_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} at {self.occurred_at:%Y-%m-%d %H:%M}"


class Order(models.Model):
    class Status(models.TextChoices):
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        REFUNDED = "refunded", _("Refunded")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="orders", db_index=False)
    order_id = models.CharField(max_length=128)
    amount = models.DecimalField(max_digits=14, decimal_places=2, validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, choices=Currency.choices)
    ordered_at = models.DateTimeField()
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.COMPLETED)
    items = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    personal_data = PersonalData(
        category="Transactional data (orders)",
        fields=("order_id", "amount", "currency", "ordered_at", "channel", "status", "items"),
        purposes=("Segmentation on purchases (RFM)", "Attribution of revenue to campaigns"),
        legal_basis="contract",
        retention="As long as the profile; accounting keeps its own copy.",
        erasure="Anonymised: order id and items cleared; amount and date stay for the aggregates.",
    )

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.UniqueConstraint(fields=["workspace", "order_id"], name="customers_order_order_id_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="customers_order_amount_not_negative"),
        ]
        indexes = [
            models.Index(fields=["workspace", "ordered_at", "profile"], name="customers_order_ws_time"),
            # orders changed since the last attribution run
            models.Index(fields=["workspace", "updated_at"], name="customers_order_ws_updated"),
            # Covers the order aggregates of segments (count, sum, average, recency of completed
            # orders in a window) with an index-only scan on PostgreSQL.
            models.Index(
                fields=["workspace", "status", "ordered_at"],
                include=["profile", "amount"],
                name="customers_order_ws_status_time",
            ),
            models.Index(fields=["profile", "ordered_at"], name="customers_order_profile_time"),
        ]
        ordering = ["-ordered_at", "-id"]

    def __str__(self) -> str:
        return f"{self.order_id} ({self.amount} {self.currency})"


# The longest answer text, and the most texts in a list answer.
MAX_ANSWER_TEXT = 2_000
MAX_ANSWER_ITEMS = 100


class SurveyResponse(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="survey_responses", db_index=False)
    survey = models.CharField(max_length=63, validators=[key_validator])
    question = models.CharField(max_length=63, validators=[key_validator])
    answer = models.JSONField(help_text=_("A text, number, yes/no, or list of texts."))
    answered_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    personal_data = PersonalData(
        category="Attitudinal data (survey and questionnaire answers)",
        fields=("survey", "question", "answer"),
        purposes=("Segmentation on attitudes and interests",),
        legal_basis="consent",
        retention="As long as the profile.",
        erasure="Deleted.",
    )

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "survey", "question"], name="customers_survey_ws_question"),
            models.Index(fields=["profile", "survey"], name="customers_survey_profile"),
        ]
        ordering = ["-answered_at", "-id"]

    def __str__(self) -> str:
        return f"{self.survey}.{self.question}"

    def clean(self) -> None:
        value = self.answer
        texts = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        ok = isinstance(value, (str, int, float, bool)) or (
            isinstance(value, list)
            and len(value) <= MAX_ANSWER_ITEMS
            and all(isinstance(item, str) and item for item in value)
        )
        ok = ok and all(len(text) <= MAX_ANSWER_TEXT for text in texts if isinstance(text, str))
        if not ok or value is None:
            raise ValidationError(
                {
                    "answer": ValidationError(
                        gettext(
                            "Expected a text (at most 2,000 characters), a number, yes/no or a list of at most 100 texts."
                        ),
                        code=CommonErrorCode.INVALID,
                    )
                }
            )
        if "\x00" in str(value):  # PostgreSQL cannot store NUL in JSON text
            raise ValidationError(
                {
                    "answer": ValidationError(
                        gettext("NUL characters are not allowed."), code=CustomerErrorCode.NULL_CHARACTER
                    )
                }
            )


class IngestReceipt(models.Model):
    """Idempotency keys of upserted items (profiles, orders): a replayed key is a duplicate.

    Events carry their key on their own row instead: they are append-only and by
    far the most numerous, so a second table would double their write cost.
    """

    class Kind(models.TextChoices):
        PROFILE = "profile", _("Profile")
        ORDER = "order", _("Order")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    idempotency_key = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "kind", "idempotency_key"], name="customers_ingestreceipt_key_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.idempotency_key}"


class ImportJob(LeasedJob):
    """A CSV file of profiles or orders, imported by a worker, with its row-level report."""

    lease_jobs = "imports"
    lease_task = "customers.tasks.import_job_run_task"
    lease_queued_status = "pending"
    lease_failure_field = "failure"

    class Kind(models.TextChoices):
        PROFILES = "profiles", _("Profiles")
        ORDERS = "orders", _("Orders")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    filename = models.CharField(max_length=255)
    content = models.TextField(help_text=_("The uploaded file, kept in the database so any worker can read it."))
    content_sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    rows = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text=_("[{row, field, message, code}], first 1,000."))
    failure = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    personal_data = PersonalData(
        category="Imported files (profiles and orders as uploaded)",
        fields=("content", "errors"),
        purposes=("Bulk loading customer data, with a row-level report",),
        legal_basis="contract or legitimate interests",
        retention="export_files_days",
        erasure="The person's rows are removed from the file and its report.",
        recipients=(),
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} import {self.filename} ({self.status})"
