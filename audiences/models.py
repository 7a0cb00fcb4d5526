from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Workspace
from audiences.querysets import AudienceMemberQuerySet
from core.leases import LeasedJob
from core.models import WorkspaceFromParent
from core.personal_data import PersonalData
from customers.models import Profile
from segments.models import JobStatus, Segment


class Audience(models.Model):
    """The computed membership of a segment, as numbered versions; readers see `current_version`.

    A computation takes the lease (token and expiry), writes version `next_version`
    set-based, then switches `current_version` by compare-and-set. A lease that
    expired belongs to a crashed worker and may be taken over.
    """

    class Status(models.TextChoices):
        NEVER = "never", _("Never computed")
        QUEUED = "queued", _("Queued")
        COMPUTING = "computing", _("Computing")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    segment = models.OneToOneField(Segment, on_delete=models.CASCADE, related_name="audience")
    current_version = models.PositiveIntegerField(default=0)
    next_version = models.PositiveIntegerField(default=0, help_text=_("The last version handed to a computation."))
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NEVER)
    size = models.PositiveIntegerField(default=0)
    contactable = models.JSONField(default=dict, blank=True, help_text=_("Members contactable, per purpose/channel."))
    computed_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(current_version__lte=models.F("next_version")),
                name="audiences_audience_current_lte_next",
            )
        ]
        indexes = [models.Index(fields=["workspace", "status"], name="audiences_audience_ws_status")]

    def __str__(self) -> str:
        return f"Audience of {self.segment}"


class AudienceMember(models.Model):
    pk = models.CompositePrimaryKey("audience", "version", "profile")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="+", db_index=False)
    version = models.PositiveIntegerField()
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")

    objects = AudienceMemberQuerySet.as_manager()

    personal_data = PersonalData(
        category="Segment memberships",
        fields=("audience", "version", "profile"),
        purposes=("Campaign targeting within the consent given",),
        legal_basis="consent (profiling) or legitimate interests",
        retention="Until the next version of the audience replaces it.",
        erasure="Deleted from every version.",
    )

    def __str__(self) -> str:
        return f"{self.profile_id} in audience {self.audience_id} v{self.version}"


class AudienceRun(WorkspaceFromParent, models.Model):
    """One computation: what it produced, how long it took, or why it failed."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        SUPERSEDED = "superseded", _("Superseded by a newer run")

    workspace_parent = "audience"
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="runs")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(max_length=20, help_text=_("schedule, manual, api, dependency"))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    size = models.PositiveIntegerField(null=True, blank=True)
    added = models.PositiveIntegerField(null=True, blank=True)
    removed = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["audience", "started_at"], name="audiences_run_audience_time")]

    def __str__(self) -> str:
        return f"{self.audience} v{self.version} ({self.status})"


class AudienceExport(LeasedJob):
    """An audience exported for one purpose and channel: who asked, when, how many, and the file."""

    lease_jobs = "audience exports"
    lease_task = "audiences.tasks.audience_export_run_task"
    lease_task_kwargs = {"export_id": "pk"}

    class Format(models.TextChoices):
        CSV = "csv", _("CSV")
        JSON = "json", _("JSON lines")

    class Identifiers(models.TextChoices):
        HASHED = "hashed", _("SHA-256 of normalised e-mail and phone (ad platforms)")
        PLAIN = "plain", _("Plain identifiers (e-mail, phone, name)")

    Status = JobStatus

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="exports")
    purpose = models.CharField(max_length=24)
    channel = models.CharField(max_length=16)
    format = models.CharField(max_length=4, choices=Format.choices, default=Format.CSV)
    identifiers = models.CharField(max_length=6, choices=Identifiers.choices, default=Identifiers.HASHED)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    audience_version = models.PositiveIntegerField(null=True, blank=True)
    audience_size = models.PositiveIntegerField(null=True, blank=True)
    row_count = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Members whose consent covered the export.")
    )
    file = models.FileField(upload_to="exports/%Y/%m/", blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    personal_data = PersonalData(
        category="Audience export files (identifiers, plain or hashed)",
        fields=("file",),
        purposes=("Activating consented audiences on channels and ad platforms",),
        legal_basis="consent",
        retention="export_files_days",
        erasure="The person's rows are removed from every file.",
        recipients=("The channel or ad platform of the export",),
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workspace", "created_at"], name="audiences_export_ws_time")]

    def __str__(self) -> str:
        return f"Export of {self.segment} for {self.purpose}/{self.channel}"


class AudienceExportMember(models.Model):
    """Who was in an export: the list of a person's past export destinations, and the rows
    an erasure must take out of the file.
    """

    pk = models.CompositePrimaryKey("export", "profile")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    export = models.ForeignKey(AudienceExport, on_delete=models.CASCADE, related_name="+", db_index=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")

    personal_data = PersonalData(
        category="Export history (who was in which export)",
        fields=("export", "profile"),
        purposes=("Listing a person's export destinations so that a removal can be sent",),
        legal_basis="legal obligation",
        retention="As long as the export.",
        erasure="Kept, pointing at the emptied profile, so later removals still reach the destination.",
    )

    def __str__(self) -> str:
        return f"{self.profile_id} in export {self.export_id}"
