"""What Cible learns from the data: profile features, RFM, personas, models and lookalikes.

Every result is computed by a worker (an `InsightJob`, with its progress), versioned, and
belongs to a workspace. Per-profile results (features, scores, memberships) are written
set-based and read by the rule language through the criteria insights registers in segments.
"""

import json
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Max, Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Workspace
from core.leases import LeasedJob
from core.personal_data import AGGREGATE_FLOOR, DerivedData, PersonalData
from customers.models import Channel, Profile
from privacy.models import ConsentPurpose
from segments.models import JobStatus, Segment


def _learnt(category: str, fields: tuple[str, ...], *, legal_basis: str, retention: str) -> PersonalData:
    """What a per-profile result of insights holds: derived from the 360 view, for profiling, deleted on erasure."""
    return PersonalData(
        category=f"{category} (derived from the customer 360 view)",
        fields=fields,
        purposes=("Personalisation and profiling within the consent given",),
        legal_basis=legal_basis,
        retention=retention,
        erasure="Deleted.",
    )


class InsightJob(LeasedJob):
    """One computation asked of a worker, with its progress for the people waiting on it."""

    lease_jobs = "insight jobs"
    lease_task = "insights.tasks.insight_job_run_task"

    class Kind(models.TextChoices):
        FEATURES = "features", _("Profile features")
        RFM = "rfm", _("RFM scores")
        PERSONAS = "personas", _("Personas (clustering)")
        MODEL = "model", _("Predictive model (training and scoring)")
        LOOKALIKE = "lookalike", _("Lookalike bands")
        CLV = "clv", _("Customer lifetime value")

    Status = JobStatus

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    subject_id = models.BigIntegerField(
        null=True, blank=True, help_text=_("The model or lookalike this job computes, for those kinds.")
    )
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    step = models.CharField(max_length=200, blank=True, help_text=_("What the worker is doing now."))
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True, help_text=_("What the job produced (ids, sizes, timings)."))
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["workspace", "kind", "status"], name="insights_job_kind_status")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"


class VectorField(models.Field):
    """A profile's features: `real[]` on PostgreSQL, a JSON array on SQLite. Written and read
    set-based by insights.features, never one row at a time."""

    description = "An array of floats"

    def db_type(self, connection) -> str:
        return "real[]" if connection.vendor == "postgresql" else "text"

    def from_db_value(self, value: Any, expression, connection) -> list[float] | None:
        if value is None or isinstance(value, list):
            return value
        return [float("nan") if v is None else float(v) for v in json.loads(value)]

    def get_db_prep_value(self, value: Any, connection, prepared: bool = False) -> Any:
        if value is None or connection.vendor == "postgresql":
            return value
        return json.dumps([None if v != v else v for v in value])


class FeatureSet(models.Model):
    """The definition of a workspace's profile features (one column per feature), and when its
    table was last refreshed. A new definition (new regions, categories, questions) rebuilds
    the whole table under a new version; otherwise a refresh recomputes only the profiles
    whose features may have changed."""

    derived_data = DerivedData(
        fields=("definition",),
        holds="Region names, attribute values and survey answers, as column labels, shared by at least "
        "AGGREGATE_FLOOR people when the definition was built.",
        erasure="Computed again (a features job) when a column shows a value the erased person had.",
        floor=AGGREGATE_FLOOR,
    )

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="feature_set")
    version = models.PositiveIntegerField(default=0)
    definition = models.JSONField(default=list, blank=True, help_text=_("The columns: [{name, facet, label, ...}]."))
    definition_hash = models.CharField(max_length=16, blank=True)
    as_of = models.DateTimeField(null=True, blank=True, help_text=_("The moment the features describe."))
    profiles = models.PositiveIntegerField(default=0)
    refreshed = models.PositiveIntegerField(default=0, help_text=_("Profiles recomputed by the last refresh."))
    full = models.BooleanField(default=True, help_text=_("Whether the last refresh rebuilt the whole table."))
    duration_ms = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"Features of {self.workspace} (v{self.version})"


class ProfileFeatures(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+", db_index=False)
    values = VectorField()

    personal_data = _learnt(
        "Profile features",
        ("profile", "values"),
        legal_basis="consent or legitimate interests, per the purpose of each use",
        retention="Recomputed on every refresh; removed with the profile.",
    )

    class Meta:
        verbose_name_plural = "profile features"
        constraints = [models.UniqueConstraint(fields=["workspace", "profile"], name="insights_features_unique")]

    def __str__(self) -> str:
        return f"Features of profile {self.profile_id}"


class LearningRun(models.Model):
    """A versioned result of a workspace (an RFM scoring, a clustering): ready once whole; the run
    before it is kept, for the migration or stability it is compared with."""

    Status = JobStatus

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["-version"]
        constraints = [models.UniqueConstraint(fields=["workspace", "version"], name="%(app_label)s_%(class)s_version")]

    @classmethod
    def next_version(cls, workspace) -> int:
        return (cls._default_manager.filter(workspace=workspace).aggregate(v=Max("version"))["v"] or 0) + 1

    @classmethod
    def current(cls, *, workspace_id: int):
        """The latest ready run of the workspace, or None."""
        return (
            cls._default_manager.filter(workspace_id=workspace_id, status=JobStatus.READY).order_by("-version").first()
        )


# --- RFM ------------------------------------------------------------------------------------


class RfmRun(LearningRun):
    as_of = models.DateTimeField()
    customers = models.PositiveIntegerField(default=0)
    boundaries = models.JSONField(default=dict, blank=True, help_text=_("Per score: the lowest value of each grade."))
    distribution = models.JSONField(default=list, blank=True)
    migration = models.JSONField(default=list, blank=True, help_text=_("[{from, to, count}] since the previous run."))

    def __str__(self) -> str:
        return f"RFM v{self.version} as of {self.as_of:%Y-%m-%d}"


class RfmScore(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    run = models.ForeignKey(RfmRun, on_delete=models.CASCADE, related_name="scores", db_index=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    recency_days = models.IntegerField()
    frequency = models.PositiveIntegerField()
    monetary = models.DecimalField(max_digits=16, decimal_places=2)
    r = models.PositiveSmallIntegerField()
    f = models.PositiveSmallIntegerField()
    m = models.PositiveSmallIntegerField()
    segment = models.CharField(max_length=40, blank=True)

    personal_data = _learnt(
        "RFM scores",
        ("profile", "recency_days", "frequency", "monetary", "r", "f", "m", "segment"),
        legal_basis="legitimate interests",
        retention="The current and the previous run; older runs are removed.",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "run", "profile"], name="insights_rfmscore_unique")]
        indexes = [models.Index(fields=["run", "segment"], name="insights_rfmscore_segment")]

    def __str__(self) -> str:
        return f"RFM {self.r}{self.f}{self.m} of profile {self.profile_id}"


class RfmSegment(models.Model):
    """A named RFM segment: score ranges; the first segment (by position) that matches wins."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=80)
    description = models.CharField(max_length=300, blank=True)
    position = models.PositiveSmallIntegerField()
    r_min = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    r_max = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    f_min = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    f_max = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    m_min = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    m_max = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "code"], name="insights_rfmsegment_code"),
            models.CheckConstraint(
                condition=Q(r_min__lte=models.F("r_max"), f_min__lte=models.F("f_max"), m_min__lte=models.F("m_max")),
                name="insights_rfmsegment_ranges",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def matches(self, r: int, f: int, m: int) -> bool:
        return self.r_min <= r <= self.r_max and self.f_min <= f <= self.f_max and self.m_min <= m <= self.m_max


# --- personas -------------------------------------------------------------------------------


class PersonaRun(LearningRun):
    class Facets(models.TextChoices):
        ALL = "all", _("Every facet")
        ATTITUDINAL = "attitudinal", _("Attitudinal only (survey answers and interests)")
        BEHAVIOURAL = "behavioural", _("Behavioural and transactional")

    facets = models.CharField(max_length=12, choices=Facets.choices, default=Facets.ALL)
    columns = models.JSONField(default=list, blank=True, help_text=_("The features clustered."))
    k = models.PositiveSmallIntegerField()
    k_chosen_by = models.CharField(max_length=10, default="user")
    k_scores = models.JSONField(default=list, blank=True, help_text=_("[{k, inertia, silhouette}] when suggested."))
    inertia = models.FloatField(null=True, blank=True)
    silhouette = models.FloatField(null=True, blank=True)
    stability_ari = models.FloatField(
        null=True, blank=True, help_text=_("Adjusted Rand index with the previous run, on the profiles in both.")
    )
    drift = models.FloatField(null=True, blank=True, help_text=_("Share of profiles that changed persona."))
    profiles = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"Personas v{self.version} (k={self.k})"


class Persona(models.Model):
    """A cluster kept across runs: a re-run matches centroids, so its segment keeps working."""

    derived_data = DerivedData(
        fields=("centroid", "profile"),
        holds="Means and over-represented traits of its members, by feature (labels as in the features).",
        erasure="Aggregates of the cluster; learnt again at the next persona run, on the features without "
        "the erased person.",
        floor=AGGREGATE_FLOOR,
    )

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    number = models.PositiveSmallIntegerField(help_text=_("Its identity across runs, within the workspace."))
    name = models.CharField(max_length=120)
    named_by_user = models.BooleanField(default=False)
    segment = models.OneToOneField(Segment, null=True, blank=True, on_delete=models.SET_NULL, related_name="persona")
    run = models.ForeignKey(PersonaRun, on_delete=models.CASCADE, related_name="personas")
    size = models.PositiveIntegerField(default=0)
    share = models.FloatField(default=0)
    centroid = models.JSONField(default=dict, blank=True, help_text=_("Feature -> mean, in readable units."))
    profile = models.JSONField(default=list, blank=True, help_text=_("Its most over-represented features."))
    active = models.BooleanField(default=True, help_text=_("Whether the latest run still has it."))

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["workspace", "number"], name="insights_persona_number")]

    def __str__(self) -> str:
        return self.name


class PersonaMember(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    run = models.ForeignKey(PersonaRun, on_delete=models.CASCADE, related_name="members", db_index=False)
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    persona = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="+", db_index=False)

    personal_data = _learnt(
        "Persona memberships",
        ("profile", "persona"),
        legal_basis="legitimate interests",
        retention="The current and the previous run; older runs are removed.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "run", "profile"], name="insights_personamember_unique")
        ]
        indexes = [models.Index(fields=["run", "persona"], name="insights_personamember_p")]

    def __str__(self) -> str:
        return f"Profile {self.profile_id} in persona {self.persona_id}"


# --- predictive models ----------------------------------------------------------------------


class PredictiveModel(models.Model):
    """A calibrated model of p(target | features): membership of a segment, or a purchase (churn)
    in the next N days. Its scores are a criterion of the rule language and drive fine targets."""

    derived_data = DerivedData(
        fields=("importances", "excluded"),
        holds="Feature labels (as in the features) and their weights.",
        erasure="Aggregates of the training set; trained again at the model's next refresh.",
        floor=AGGREGATE_FLOOR,
    )

    class Kind(models.TextChoices):
        MEMBERSHIP = "membership", _("Membership of a segment")
        PURCHASE = "purchase", _("Will purchase in the next N days")
        CHURN = "churn", _("Churn risk: a customer who will not purchase in the next N days")

    class Correction(models.TextChoices):
        AUTO = "auto", _("Automatic: for static lists, whose non-members are unlabelled")
        ON = "on", _("Positive-unlabelled correction (Elkan & Noto)")
        OFF = "off", _("None: non-members are true negatives")

    Status = JobStatus

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=120)
    segment = models.ForeignKey(
        Segment,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="predictive_models",
        help_text=_("Membership: whose."),
    )
    horizon_days = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    pu_correction = models.CharField(max_length=4, choices=Correction.choices, default=Correction.AUTO)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    version = models.PositiveIntegerField(default=0, help_text=_("The version of the scores in use; 0: none yet."))
    trained_at = models.DateTimeField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    curve = models.JSONField(default=list, blank=True, help_text=_("[{threshold, reach, precision, recall}]."))
    importances = models.JSONField(default=list, blank=True)
    excluded = models.JSONField(default=list, blank=True, help_text=_("Features left out, with why."))
    threshold = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text=_("The threshold the marketer picked (by reach or by precision)."),
    )
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "segment"], condition=Q(kind="membership"), name="insights_model_one_per_segment"
            ),
            models.CheckConstraint(
                condition=Q(kind="membership", segment__isnull=False)
                | Q(kind__in=["purchase", "churn"], horizon_days__isnull=False),
                name="insights_model_subject",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Score(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    model = models.ForeignKey(PredictiveModel, on_delete=models.CASCADE, related_name="+", db_index=False)
    version = models.PositiveIntegerField()
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    score = models.FloatField()

    personal_data = _learnt(
        "Predicted probabilities",
        ("profile", "score"),
        legal_basis="legitimate interests",
        retention="The current and the previous version; older versions are removed.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "model", "version", "profile"], name="insights_score_unique")
        ]
        indexes = [models.Index(fields=["model", "version", "score"], name="insights_score_by_value")]

    def __str__(self) -> str:
        return f"{self.score:.3f} for profile {self.profile_id}"


# --- lookalikes -----------------------------------------------------------------------------

BANDS = 10  # 1 % to 10 % of the eligible base


class Lookalike(models.Model):
    """Twin profiles of a seed segment: the eligible base ranked by the seed's membership model,
    in bands of 1 % to 10 %, each a segment a campaign can target."""

    Status = JobStatus

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    seed = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="lookalikes")
    purpose = models.CharField(max_length=32, choices=ConsentPurpose.choices, default=ConsentPurpose.AD_TARGETING)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.DISPLAY)
    model = models.ForeignKey(PredictiveModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    version = models.PositiveIntegerField(default=0)
    eligible = models.PositiveIntegerField(default=0, help_text=_("Profiles ranked: not in the seed, with consent."))
    bands = models.JSONField(default=list, blank=True, help_text=_("[{band, size, segment}]."))
    evaluation = models.JSONField(default=dict, blank=True, help_text=_("Held-out seed members recovered per band."))
    computed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "seed", "purpose", "channel"], name="insights_lookalike_unique"
            )
        ]

    def __str__(self) -> str:
        return f"Lookalikes of {self.seed} ({self.purpose}/{self.channel})"


class LookalikeMember(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    lookalike = models.ForeignKey(Lookalike, on_delete=models.CASCADE, related_name="+", db_index=False)
    version = models.PositiveIntegerField()
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+")
    band = models.PositiveSmallIntegerField(help_text=_("1: the 1 % most similar; 10: from 9 % to 10 %."))

    personal_data = _learnt(
        "Lookalike bands",
        ("profile", "band"),
        legal_basis="legitimate interests",
        retention="The current and the previous version.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "lookalike", "version", "profile"], name="insights_lookalikemember_unique"
            )
        ]
        indexes = [models.Index(fields=["lookalike", "version", "band"], name="insights_lookalike_band")]

    def __str__(self) -> str:
        return f"Profile {self.profile_id} in band {self.band}"


# --- Customer lifetime value ----------------------------------------------------------------


class ClvRun(LearningRun):
    """Customer lifetime value as of a moment (insights.clv): BG/NBD and Gamma-Gamma fitted on
    every customer's order history, and each customer's scores."""

    class Unit(models.TextChoices):
        DAYS = "days", _("Days")
        WEEKS = "weeks", _("Weeks")

    as_of = models.DateTimeField()
    unit = models.CharField(max_length=5, choices=Unit.choices, default=Unit.WEEKS)
    horizon_months = models.PositiveSmallIntegerField(
        default=12, validators=[MinValueValidator(1), MaxValueValidator(120)], help_text=_("The CLV's horizon.")
    )
    discount_rate = models.FloatField(
        default=0.01,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text=_("Monthly discount rate of future value (0.01 is 1 % a month)."),
    )
    purchase_days = models.PositiveSmallIntegerField(
        default=90,
        validators=[MinValueValidator(1), MaxValueValidator(3660)],
        help_text=_("Expected purchases are counted over this many days ahead."),
    )
    holdout_days = models.PositiveSmallIntegerField(
        default=90,
        validators=[MaxValueValidator(3660)],
        help_text=_(
            "The holdout check: BG/NBD is fitted again without the last this many days and its forecast of them compared with the purchases made (0: no check)."
        ),
    )
    customers = models.PositiveIntegerField(default=0)
    parameters = models.JSONField(
        default=dict, blank=True, help_text=_('{"bgnbd": {r, alpha, a, b}, "gamma_gamma": {p, q, v}}.')
    )
    standard_errors = models.JSONField(
        default=dict,
        blank=True,
        help_text=_(
            'The parameters\' standard errors, from the likelihood\'s curvature at the estimate: {"bgnbd": {r, alpha, a, b}, "gamma_gamma": {p, q, v}}.'
        ),
    )
    frequency_value_correlation = models.FloatField(
        null=True, blank=True, help_text=_("Gamma-Gamma assumes it small (repeat customers only).")
    )
    estimation = models.TextField(
        blank=True,
        help_text=_("How BG/NBD was estimated when not by maximum likelihood (a degenerate estimate), and why."),
    )
    holdout = models.JSONField(
        default=dict,
        blank=True,
        help_text=_(
            "{calibration_end, days, customers, expected, actual, bands: [{frequency, customers, expected, actual}]}, or {days, skipped: why}; empty without a check."
        ),
    )
    deciles = models.JSONField(default=list, blank=True, help_text=_("[{decile, customers, clv, share}], 10 first."))
    error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"CLV v{self.version} as of {self.as_of:%Y-%m-%d}"


class ClvScore(models.Model):
    """A customer's scores in a CLV run. Derived data, written a million rows at a time by one COPY:
    its references are not foreign-key constraints in the database (Django still deletes the rows
    with what they point to), so the commit does not check each of them."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    run = models.ForeignKey(
        ClvRun, on_delete=models.CASCADE, related_name="scores", db_index=False, db_constraint=False
    )
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    frequency = models.FloatField(help_text=_("Repeat purchase days."))
    recency = models.FloatField(help_text=_("First to last purchase, in the run's unit."))
    age = models.FloatField(help_text=_("First purchase to as_of, in the run's unit."))
    monetary = models.FloatField(help_text=_("Mean value of the repeat purchases."))
    p_alive = models.FloatField(help_text=_("Probability of still being a customer."))
    p_alive_change = models.FloatField(
        null=True, blank=True, help_text=_("p_alive minus the previous run's (none when the customer was not in it).")
    )
    purchases = models.FloatField(help_text=_("Expected purchases over the run's purchase_days."))
    value = models.FloatField(help_text=_("Expected value of a purchase (Gamma-Gamma)."))
    value_12m = models.FloatField(
        default=0.0, help_text=_("Expected value of the next 12 months' purchases (not discounted).")
    )
    spend_per_year = models.FloatField(
        default=0.0, help_text=_("What the customer spent per year so far (over at least a year).")
    )
    clv = models.FloatField(
        help_text=_("Discounted value over the horizon (an estimate, in the workspace's currency).")
    )
    decile = models.IntegerField(help_text=_("10 = the most valuable tenth."))

    # Every measure of a customer in a run, in the order the API, the access document and the
    # personal-data declaration list them.
    MEASURES = (
        "frequency",
        "recency",
        "age",
        "monetary",
        "p_alive",
        "p_alive_change",
        "purchases",
        "value",
        "value_12m",
        "spend_per_year",
        "clv",
        "decile",
    )
    personal_data = _learnt(
        "Customer lifetime value",
        ("profile", *MEASURES),
        legal_basis="legitimate interests",
        retention="The current and the previous run; older runs are removed.",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "run", "profile"], name="insights_clvscore_unique")]
        indexes = [models.Index(fields=["run", "decile"], name="insights_clvscore_decile")]

    def __str__(self) -> str:
        return f"CLV {self.clv} of profile {self.profile_id}"
