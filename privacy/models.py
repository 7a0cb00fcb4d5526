"""Privacy: the consent history, the suppression list, data-subject requests, retention
policies, removal notices and the audit log.

Consent records, suppressions and audit entries are append-only histories: the ORM refuses
to update or delete them (`core.models.AppendOnlyModel`), the admin shows them read-only
and the API has no update or delete route. Erasure is the one sanctioned exception for
consent records, in `privacy.erasure`, because the person's right outranks the history.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Workspace
from core.models import AppendOnlyModel, AppendOnlyQuerySet
from core.personal_data import PersonalData
from customers.models import Channel, Profile
from privacy.querysets import ConsentRecordQuerySet, RequestQuerySet


class ConsentPurpose(models.TextChoices):
    DIRECT_MARKETING = "direct_marketing", _("Direct marketing")
    PERSONALISATION = "personalisation", _("Personalisation")
    PROFILING = "profiling", _("Profiling")
    AD_TARGETING = "ad_targeting", _("Ad targeting")
    DATA_SHARING = "data_sharing", _("Data sharing with partners")
    ANALYTICS = "analytics", _("Analytics")


# The purposes an objection to direct marketing ends (GDPR Art. 21(2)-(3): direct marketing and
# the profiling related to it, which includes targeting the person on ad platforms).
MARKETING_PURPOSES = (
    ConsentPurpose.DIRECT_MARKETING,
    ConsentPurpose.AD_TARGETING,
    ConsentPurpose.PROFILING,
    ConsentPurpose.PERSONALISATION,
)


class ConsentStatus(models.TextChoices):
    GRANTED = "granted", _("Granted")
    DENIED = "denied", _("Denied")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class LegalBasis(models.TextChoices):
    CONSENT = "consent", _("Consent")
    CONTRACT = "contract", _("Contract")
    LEGAL_OBLIGATION = "legal_obligation", _("Legal obligation")
    VITAL_INTERESTS = "vital_interests", _("Vital interests")
    PUBLIC_TASK = "public_task", _("Public task")
    LEGITIMATE_INTERESTS = "legitimate_interests", _("Legitimate interests")


# What a consent statement says, in the order the API, the admin and exports show it.
CONSENT_FIELDS = (
    "purpose",
    "channel",
    "status",
    "legal_basis",
    "recorded_at",
    "source",
    "form",
    "notice_version",
    "ip_address",
    "user_agent",
    "proof",
)


class ConsentRecord(AppendOnlyModel):
    """One statement of a person's consent for a purpose on a channel.

    The history is append-only: the state in force is the latest record, and
    "was it valid at time t" is the latest record at or before t.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="consents", db_index=False)
    purpose = models.CharField(max_length=24, choices=ConsentPurpose.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    status = models.CharField(max_length=10, choices=ConsentStatus.choices)
    legal_basis = models.CharField(max_length=24, choices=LegalBasis.choices, default=LegalBasis.CONSENT)
    recorded_at = models.DateTimeField(help_text=_("When the person gave, refused or withdrew it."))
    source = models.CharField(
        max_length=100, help_text=_("The system or process that collected it, e.g. web-checkout.")
    )
    form = models.CharField(max_length=200, blank=True, help_text=_("The form or page where it was collected."))
    notice_version = models.CharField(max_length=40, blank=True, help_text=_("Version of the privacy notice shown."))
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    proof = models.CharField(
        max_length=500,
        blank=True,
        help_text=_("Where the evidence is kept: a signed form's reference, a recording id, a document's SHA-256."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ConsentRecordQuerySet.as_manager()
    personal_data = PersonalData(
        category="Consent and its evidence",
        fields=("purpose", "channel", "status", "recorded_at", "source", "form", "ip_address", "user_agent", "proof"),
        purposes=("Proving consent (GDPR Art. 7(1))", "Honouring consent and its withdrawal in every activation"),
        legal_basis=LegalBasis.LEGAL_OBLIGATION,
        retention="As long as the profile exists; removed by erasure.",
    )

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        indexes = [
            models.Index(
                fields=["workspace", "purpose", "channel", "profile", "recorded_at"],
                name="customers_consent_ws_purpose",
            ),
            models.Index(fields=["profile", "purpose", "channel", "recorded_at"], name="customers_consent_profile"),
        ]
        ordering = ["-recorded_at", "-id"]

    def __str__(self) -> str:
        return f"{self.purpose}/{self.channel}: {self.status}"


class Suppression(AppendOnlyModel):
    """A hashed identifier that must never be contacted again: it outlives the profile's erasure.

    The hash is the SHA-256 of the normalised identifier (e-mail trimmed and lower-cased, phone
    in E.164), the same hash ad platforms receive, so the database can compare it set-based.
    """

    class Kind(models.TextChoices):
        EMAIL = "email", _("E-mail")
        PHONE = "phone", _("Phone")

    class Reason(models.TextChoices):
        OBJECTION = "objection", _("Objection to direct marketing")
        MANUAL = "manual", _("Added by the privacy team")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=5, choices=Kind.choices)
    hash = models.CharField(max_length=64, help_text=_("SHA-256 of the normalised identifier, hex."))
    reason = models.CharField(max_length=10, choices=Reason.choices)
    request = models.ForeignKey(
        "privacy.DataSubjectRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="suppressions"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = AppendOnlyQuerySet.as_manager()
    personal_data = PersonalData(
        category="Suppression list (hashed identifiers)",
        fields=("hash",),
        purposes=("Never contacting a person who objected to direct marketing, even after erasure",),
        legal_basis=LegalBasis.LEGAL_OBLIGATION,
        retention="Kept for as long as the workspace exists: it is what makes the objection last.",
        erasure="Kept on purpose: an objection outlives erasure (GDPR Art. 21(3), Recital 66).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "kind", "hash"], name="privacy_suppression_unique"),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.hash[:12]}…"


class DataSubjectRequest(models.Model):
    """A person's request under GDPR Art. 15-21, due one month after it was received.

    Once an erasure is done the row stays as its tombstone: what was asked, when, by whom it was
    handled and how many rows were removed, with the person's identifiers replaced by hashes.
    """

    class Kind(models.TextChoices):
        ACCESS = "access", _("Access (Art. 15)")
        PORTABILITY = "portability", _("Portability (Art. 20)")
        RECTIFICATION = "rectification", _("Rectification (Art. 16)")
        ERASURE = "erasure", _("Erasure (Art. 17)")
        OBJECTION = "objection", _("Objection to direct marketing (Art. 21)")

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        IN_PROGRESS = "in_progress", _("In progress")
        COMPLETED = "completed", _("Completed")
        REJECTED = "rejected", _("Rejected")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="privacy_requests")
    kind = models.CharField(max_length=13, choices=Kind.choices)
    status = models.CharField(max_length=11, choices=Status.choices, default=Status.RECEIVED, editable=False)
    profile = models.ForeignKey(
        Profile, null=True, blank=True, on_delete=models.SET_NULL, related_name="privacy_requests"
    )
    subject = models.CharField(
        max_length=254,
        blank=True,
        help_text=_("How the person identified themselves (e-mail or phone); replaced by its hash after erasure."),
    )
    subject_hashes = models.JSONField(default=list, blank=True, editable=False)
    received_at = models.DateTimeField()
    due_on = models.DateField(editable=False, help_text=_("One month after receipt, or later once extended."))
    original_due_on = models.DateField(editable=False)
    extension_reason = models.TextField(blank=True, editable=False)
    extended_at = models.DateTimeField(null=True, blank=True, editable=False)
    changes = models.JSONField(
        default=dict, blank=True, help_text=_("Rectification: the profile fields to correct and their new values.")
    )
    notes = models.TextField(blank=True, help_text=_("Handling notes. Do not copy the person's identifiers here."))
    resolution = models.TextField(blank=True, editable=False, help_text=_("Why it was rejected, or what was done."))
    outcome = models.JSONField(
        default=dict, blank=True, editable=False, help_text=_("Rows removed or changed, by kind.")
    )
    export_file = models.FileField(upload_to="privacy/%Y/%m/", blank=True, editable=False)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RequestQuerySet.as_manager()
    personal_data = PersonalData(
        category="Data-subject requests",
        fields=("subject", "changes", "export_file"),
        purposes=("Answering the person's requests and proving it was done in time",),
        legal_basis=LegalBasis.LEGAL_OBLIGATION,
        retention="The request is kept as a tombstone; identifiers are hashed on erasure and export files "
        "follow the export-file retention.",
        erasure="The request stays as a tombstone with hashed identifiers.",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(due_on__gte=models.F("original_due_on")), name="privacy_request_due"),
        ]
        indexes = [models.Index(fields=["workspace", "status", "due_on"], name="privacy_request_ws_due")]
        ordering = ["due_on", "id"]
        verbose_name = "data-subject request"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.get_status_display()})"

    @property
    def open(self) -> bool:
        return self.status in (self.Status.RECEIVED, self.Status.IN_PROGRESS)


class RetentionPolicy(models.Model):
    """How long a workspace keeps personal data; the daily purge applies it in bounded batches."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="retention_policy")
    events_months = models.PositiveSmallIntegerField(
        null=True, blank=True, default=25, help_text=_("Delete behavioural events older than this. Empty: keep.")
    )
    inactive_prospect_months = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        default=36,
        help_text=_(
            "Erase prospects with no qualifying contact (an order, a click, a visit; not an e-mail open) for this long. Empty: keep."
        ),
    )
    export_files_days = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        default=90,
        help_text=_("Delete export, delivery and access-request files older than this. Empty: keep."),
    )
    last_purge_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_purge = models.JSONField(default=dict, blank=True, editable=False, help_text=_("Rows purged by kind."))
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    class Meta:
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return f"Retention of {self.workspace}"


class RemovalNotice(models.Model):
    """A request to a past destination of the person's data to remove them (after withdrawal,
    objection or erasure). A webhook connector receives it signed; other destinations are
    listed for the team to act on.
    """

    class Reason(models.TextChoices):
        WITHDRAWAL = "withdrawal", _("Consent withdrawn")
        OBJECTION = "objection", _("Objection to direct marketing")
        ERASURE = "erasure", _("Erasure")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        MANUAL = "manual", _("To send by hand (no webhook)")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    profile = models.ForeignKey(Profile, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    request = models.ForeignKey(
        DataSubjectRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="removal_notices"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    destinations = models.JSONField(default=list, help_text=_("The exports and hand-offs that carried the person."))
    reason = models.CharField(max_length=10, choices=Reason.choices)
    payload = models.JSONField(default=dict, help_text=_("Hashed identifiers only."))
    status = models.CharField(max_length=6, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    personal_data = PersonalData(
        category="Removal notices (hashed identifiers)",
        fields=("payload", "destinations"),
        purposes=("Telling past destinations of a person's data to remove them",),
        legal_basis=LegalBasis.LEGAL_OBLIGATION,
        retention="Kept as proof that the removal was asked for.",
        erasure="Kept: it holds hashes only, and proves the removal was sent.",
        recipients=("The channel's webhook",),
    )

    class Meta:
        indexes = [models.Index(fields=["workspace", "status"], name="privacy_removal_ws_status")]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Removal on {self.channel} ({self.status})"


class AuditEntry(AppendOnlyModel):
    """Who did what to whose data, and when: PII exports, request handling, views of a person.

    Entries name people by profile id only, never by an identifier, so that an erasure has
    nothing to remove here and the log can stay append-only.
    """

    class Action(models.TextChoices):
        PROFILE_VIEWED = "profile_viewed", _("Viewed a person's data")
        EXPORT_REQUESTED = "export_requested", _("Requested an export")
        EXPORT_DOWNLOADED = "export_downloaded", _("Downloaded an export")
        REQUEST_CREATED = "request_created", _("Recorded a data-subject request")
        REQUEST_UPDATED = "request_updated", _("Edited a data-subject request")
        REQUEST_STARTED = "request_started", _("Started a data-subject request")
        REQUEST_EXTENDED = "request_extended", _("Extended a data-subject request")
        REQUEST_COMPLETED = "request_completed", _("Completed a data-subject request")
        REQUEST_REJECTED = "request_rejected", _("Rejected a data-subject request")
        ACCESS_DOWNLOADED = "access_downloaded", _("Downloaded a person's data")
        CONSENT_WITHDRAWN = "consent_withdrawn", _("Withdrew consent")
        CONSENT_IMPORTED = "consent_imported", _("Imported consent records")
        SUPPRESSION_ADDED = "suppression_added", _("Added to the suppression list")
        RETENTION_CHANGED = "retention_changed", _("Changed the retention policy")
        RETENTION_PURGED = "retention_purged", _("Purged data past its retention")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, help_text=_("The user name at the time, or the system task."))
    action = models.CharField(max_length=20, choices=Action.choices)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=40, blank=True)
    profile_id = models.BigIntegerField(null=True, blank=True, help_text=_("The person whose data it was."))
    detail = models.JSONField(default=dict, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "at"], name="privacy_audit_ws_at"),
            models.Index(fields=["workspace", "profile_id", "at"], name="privacy_audit_ws_profile"),
        ]
        ordering = ["-at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.actor_name} {self.get_action_display().lower()} ({self.object_type} {self.object_id})"
