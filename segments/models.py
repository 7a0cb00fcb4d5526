from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Workspace
from core.leases import LeasedJob
from core.models import WorkspaceFromParent
from core.personal_data import AGGREGATE_FLOOR, DerivedData, PersonalData
from customers.models import Profile


class Segment(models.Model):
    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", _("Dynamic (rules)")
        STATIC = "static", _("Static (a fixed list)")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DYNAMIC)
    definition = models.JSONField(
        null=True, blank=True, help_text=_("The rules (see the rule language); empty for a static list.")
    )
    refresh_every = models.DurationField(
        null=True, blank=True, help_text=_("How often the audience is recomputed; empty: on demand only.")
    )
    depends_on = models.ManyToManyField("self", symmetrical=False, related_name="used_by", blank=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="segments_segment_name_unique"),
            models.CheckConstraint(
                condition=Q(kind="static") | Q(definition__isnull=False), name="segments_segment_dynamic_has_rules"
            ),
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class JobStatus(models.TextChoices):
    """The life of a result computed by a worker on request (an analysis, an export)."""

    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")


class SegmentAnalysis(WorkspaceFromParent, LeasedJob):
    """The latest index table of a segment (computed by a worker on its current audience)."""

    derived_data = DerivedData(
        fields=("rows",),
        holds="Values of profiles as facet values: regions, interests and survey answers, declared by the team "
        "or shared by at least AGGREGATE_FLOOR people of the base.",
        erasure="Emptied and computed again when it shows a value the erased person had.",
        floor=AGGREGATE_FLOOR,
    )
    lease_jobs = "segment analyses"
    lease_task = "segments.tasks.segment_analysis_run_task"
    lease_task_kwargs = {"segment_id": "segment_id"}

    Status = JobStatus
    workspace_parent = "segment"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    segment = models.OneToOneField(Segment, on_delete=models.CASCADE, related_name="analysis")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    audience_version = models.PositiveIntegerField(default=0)
    segment_size = models.PositiveIntegerField(default=0)
    base_size = models.PositiveIntegerField(default=0)
    min_index = models.FloatField(default=120.0)
    min_count = models.PositiveIntegerField(default=100)
    min_abs_z = models.FloatField(default=2.0)
    rows = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "segment analyses"

    def __str__(self) -> str:
        return f"Analysis of {self.segment}"


class ManualMember(models.Model):
    """A person added to or removed from a segment by hand; survives every recomputation.

    A static segment's list is made of its `include` rows.
    """

    class Action(models.TextChoices):
        INCLUDE = "include", _("Always include")
        EXCLUDE = "exclude", _("Always exclude")

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="manual_members")
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=8, choices=Action.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    personal_data = PersonalData(
        category="Segment memberships (added or removed by hand)",
        fields=("segment", "profile", "action"),
        purposes=("Campaign targeting within the consent given",),
        legal_basis="legitimate interests",
        retention="Until removed from the segment.",
        erasure="Deleted.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "segment", "profile"], name="segments_manualmember_unique")
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.profile_id} in {self.segment_id}"
