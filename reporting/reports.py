"""Reports: the roll-up filtered and grouped, with the KPIs, reach and frequency; CSV; report jobs."""

import io
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db.models import Count, Sum
from django.http import FileResponse, Http404
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Workspace
from campaigns.models import Campaign, LedgerEntry, Target, Touch
from core import csvfiles
from core.errors import CommonErrorCode
from core.leases import lease_fail, lease_heartbeat, lease_release, lease_take
from reporting.kpis import KPI_NAMES, frequency, kpis
from reporting.models import DailyRollup, ReportJob
from segments.models import Segment

GROUPS = ("day", "campaign", "target", "segment", "channel")
CENT = Decimal("0.01")
# The roll-up column behind each grouping, and the touches' one (for reach).
ROLLUP_FIELD = {
    "day": "day",
    "campaign": "campaign_id",
    "target": "target_id",
    "segment": "target__segment_id",
    "channel": "channel",
}
TOUCH_FIELD = {**ROLLUP_FIELD, "day": "sent_day"}
SUMS = (
    "impressions",
    "clicks",
    "spend",
    "sends",
    "conversions",
    "revenue",
    "reported_conversions",
    "reported_revenue",
)
COLUMNS = [
    *GROUPS,
    "campaign_name",
    "segment_name",
    "impressions",
    "clicks",
    "spend",
    "sends",
    "reach",
    "frequency",
    "conversions",
    "revenue",
    "attributed_conversions",
    "attributed_revenue",
    "reported_conversions",
    "reported_revenue",
    *KPI_NAMES,
]
BASES = ("attributed", "reported")


@dataclass
class ReportQuery:
    """What a report covers and how it is grouped; every id is checked against the workspace."""

    workspace: Workspace
    campaigns: list[int] = field(default_factory=list)
    segments: list[int] = field(default_factory=list)
    targets: list[int] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    date_from: date | None = None
    date_to: date | None = None
    group_by: list[str] = field(default_factory=list)
    basis: str = "attributed"

    def check(self) -> "ReportQuery":
        errors = {}
        unknown = [name for name in self.group_by if name not in GROUPS]
        if unknown:
            errors["group_by"] = ValidationError(
                gettext("Unknown grouping %(value)s; choose among %(value2)s.")
                % {"value": ", ".join(unknown), "value2": ", ".join(GROUPS)},
                code=CommonErrorCode.INVALID_CHOICE,
            )
        if len(set(self.group_by)) != len(self.group_by):
            errors["group_by"] = ValidationError(gettext("A grouping appears twice."), code=CommonErrorCode.INVALID)
        if self.basis not in BASES:
            errors["basis"] = ValidationError(
                gettext("Choose %(value)s.") % {"value": " or ".join(BASES)}, code=CommonErrorCode.INVALID_CHOICE
            )
        if self.date_from and self.date_to and self.date_from > self.date_to:
            errors["date_to"] = ValidationError(
                gettext("The range ends before it starts."), code=CommonErrorCode.INVALID
            )
        for name, model in (("campaigns", Campaign), ("segments", Segment)):
            ids = getattr(self, name)
            found = set(model.objects.filter(workspace=self.workspace, pk__in=ids).values_list("pk", flat=True))
            if missing := [i for i in ids if i not in found]:
                errors[name] = ValidationError(
                    gettext("Not in this workspace: %(missing)s.") % {"missing": missing},
                    code=CommonErrorCode.DOES_NOT_EXIST,
                )
        found = set(
            Target.objects.filter(campaign__workspace=self.workspace, pk__in=self.targets).values_list("pk", flat=True)
        )
        if missing := [i for i in self.targets if i not in found]:
            errors["targets"] = ValidationError(
                gettext("Not in this workspace: %(missing)s.") % {"missing": missing},
                code=CommonErrorCode.DOES_NOT_EXIST,
            )
        if errors:
            raise ValidationError(errors)
        return self

    def grouped(self, *group_by: str) -> "ReportQuery":
        """The same report, grouped otherwise (nothing: one row of totals)."""
        return replace(self, group_by=list(group_by))

    def as_parameters(self) -> dict:
        return {
            "campaigns": self.campaigns,
            "segments": self.segments,
            "targets": self.targets,
            "channels": self.channels,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "group_by": self.group_by,
            "basis": self.basis,
        }

    @classmethod
    def from_parameters(cls, workspace: Workspace, parameters: dict) -> "ReportQuery":
        values = dict(parameters)
        for name in ("date_from", "date_to"):
            values[name] = date.fromisoformat(values[name]) if values.get(name) else None
        return cls(workspace=workspace, **values)

    def _filter(self, queryset, day_field: str):
        queryset = queryset.filter(workspace=self.workspace)
        if self.campaigns:
            queryset = queryset.filter(campaign_id__in=self.campaigns)
        if self.segments:
            queryset = queryset.filter(target__segment_id__in=self.segments)
        if self.targets:
            queryset = queryset.filter(target_id__in=self.targets)
        if self.channels:
            queryset = queryset.filter(channel__in=self.channels)
        if self.date_from:
            queryset = queryset.filter(**{f"{day_field}__gte": self.date_from})
        if self.date_to:
            queryset = queryset.filter(**{f"{day_field}__lte": self.date_to})
        return queryset


def report_rows(*, query: ReportQuery) -> list[dict[str, Any]]:
    """One row per group, with the sums, reach and frequency, and the KPIs (None on a zero denominator)."""
    query.check()
    dims = [ROLLUP_FIELD[name] for name in query.group_by]
    rollups = query._filter(DailyRollup.objects.all(), "day")
    totals = {name: Sum(name) for name in SUMS}
    # no grouping: one row for the whole report, zeros when there is nothing
    sums = rollups.order_by().values(*dims).annotate(**totals) if dims else [rollups.aggregate(**totals)]
    # Reach is exact: distinct people among the deliveries of each group, never a sum of days.
    touches = query._filter(Touch.objects.filter(status=Touch.Status.SENT, sent_day__isnull=False), "sent_day")
    reach_dims = [TOUCH_FIELD[name] for name in query.group_by]
    reach = Count("profile_id", distinct=True)
    reach_rows = (
        touches.order_by().values(*reach_dims).annotate(reach=reach) if dims else [touches.aggregate(reach=reach)]
    )
    reaches = {tuple(row[d] for d in reach_dims): row["reach"] for row in reach_rows}
    # names of the groups' campaigns and segments only, one query each
    groups = [dict(zip(query.group_by, (row[d] for d in dims), strict=True)) for row in sums]
    target_segments = dict(
        Target.objects.filter(pk__in={g["target"] for g in groups if g.get("target")}).values_list("pk", "segment_id")
    )
    campaign_ids = {g["campaign"] for g in groups if g.get("campaign")}
    segment_ids = {g["segment"] for g in groups if g.get("segment")} | set(target_segments.values())
    campaign_names = dict(
        Campaign.objects.filter(workspace=query.workspace, pk__in=campaign_ids).values_list("pk", "name")
    )
    segment_names = dict(
        Segment.objects.filter(workspace=query.workspace, pk__in=segment_ids).values_list("pk", "name")
    )
    out = []
    for row in sums:
        key = tuple(row[d] for d in dims)
        values: dict[str, Any] = {  # the sums: Decimal amounts (spend, revenue), int counts
            name: (Decimal(row[name] or 0).quantize(CENT) if name.endswith(("spend", "revenue")) else row[name] or 0)
            for name in SUMS
        }
        reach = reaches.get(key, 0)
        conversions = values["conversions"] if query.basis == "attributed" else values["reported_conversions"]
        revenue = values["revenue"] if query.basis == "attributed" else values["reported_revenue"]
        item: dict[str, Any] = {name: None for name in GROUPS}
        for name, value in zip(query.group_by, key, strict=True):
            item[name] = value
        campaign_id = item["campaign"]
        segment_id = item["segment"] or (target_segments.get(item["target"]) if item["target"] else None)
        item.update(
            campaign_name=campaign_names.get(campaign_id) if campaign_id else None,
            segment_name=segment_names.get(segment_id) if segment_id else None,
            impressions=values["impressions"],
            clicks=values["clicks"],
            spend=values["spend"],
            sends=values["sends"],
            reach=reach,
            frequency=frequency(values["sends"], reach),
            conversions=conversions,
            revenue=revenue,
            attributed_conversions=values["conversions"],
            attributed_revenue=values["revenue"],
            reported_conversions=values["reported_conversions"],
            reported_revenue=values["reported_revenue"],
            **kpis(
                impressions=values["impressions"],
                clicks=values["clicks"],
                spend=values["spend"],
                conversions=conversions,
                revenue=revenue,
            ),
        )
        out.append(item)
    out.sort(key=lambda r: tuple((r[name] is None, r[name] if r[name] is not None else 0) for name in query.group_by))
    return out


def report_totals(*, query: ReportQuery) -> dict[str, Any]:
    """The whole report in one row."""
    return report_rows(query=query.grouped())[0]


def report_csv(*, rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    buffer = io.StringIO()
    writer = csvfiles.writer(buffer)
    columns = columns or COLUMNS
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(name) is None else row[name] for name in columns])
    return buffer.getvalue()


def report_columns(*, query: ReportQuery) -> list[str]:
    """The CSV columns: the groupings asked for, then the names and the figures."""
    grouped = set(query.group_by)
    names = [
        name
        for name, needs in (("campaign_name", {"campaign", "target"}), ("segment_name", {"segment", "target"}))
        if needs & grouped
    ]
    return [*query.group_by, *names, *COLUMNS[len(GROUPS) + 2 :]]


def report_job_create(*, query: ReportQuery, user=None) -> ReportJob:
    from reporting.tasks import report_job_task

    query.check()
    job = ReportJob.objects.create(workspace=query.workspace, requested_by=user, parameters=query.as_parameters())
    report_job_task.delay_on_commit(job_id=job.pk)
    return job


def report_job_run(*, job_id: int) -> ReportJob:
    """Write the report's CSV under the job's lease (renewed while it runs); a job whose worker
    was killed is queued again by the workers' recovery, and only the lease holder records it."""
    job = ReportJob.objects.select_related("workspace").get(pk=job_id)
    if job.status in (ReportJob.Status.DONE, ReportJob.Status.FAILED):
        return job
    token = lease_take(
        queryset=ReportJob.objects.filter(pk=job.pk, status__in=[ReportJob.Status.QUEUED, ReportJob.Status.RUNNING]),
        status=ReportJob.Status.RUNNING,
    )
    if token is None:
        return job  # another worker is writing it
    with lease_heartbeat(model=ReportJob, pk=job.pk, token=token):
        try:
            query = ReportQuery.from_parameters(job.workspace, job.parameters)
            rows = report_rows(query=query)
            content = report_csv(rows=rows, columns=report_columns(query=query))
        except Exception as exc:  # never left running for ever: the marketer sees that it stopped, and why
            lease_fail(
                model=ReportJob,
                pk=job.pk,
                token=token,
                exc=exc,
                expected=(ValidationError, ValueError, TypeError),
                finished_at=timezone.now(),
            )
        else:
            job.file.save(f"report-{job.workspace.slug}-{job.pk}.csv", ContentFile(content.encode()), save=False)
            lease_release(
                model=ReportJob,
                pk=job.pk,
                token=token,
                finished_at=timezone.now(),
                status=ReportJob.Status.DONE,
                rows=len(rows),
                file=job.file.name,
            )
    job.refresh_from_db()
    return job


def report_file_response(*, job: ReportJob) -> FileResponse:
    """The job's CSV as a download; Http404 while there is no file."""
    name = job.file.name  # empty exactly when `not job.file`
    if job.status != ReportJob.Status.DONE or not name:
        raise Http404("This report has no file (yet).")
    return FileResponse(
        job.file.open("rb"), as_attachment=True, filename=name.rsplit("/", 1)[-1], content_type="text/csv"
    )


# --- spend against budget and pacing ----------------------------------------------------------


def spend_series(*, campaign: Campaign) -> list[dict[str, Any]]:
    """Per day from start to end (or today): spend, cumulative spend, budget in force, and the
    even pacing line (the budget spread evenly over the days of the schedule)."""
    from core.time import local_day

    first = local_day(campaign.workspace, campaign.starts_at)
    last = local_day(campaign.workspace, campaign.ends_at)
    today = local_day(campaign.workspace, timezone.now())
    until = min(last, max(today, first))
    spend = dict(
        LedgerEntry.objects.filter(campaign=campaign, kind=LedgerEntry.Kind.SPEND)
        .order_by()
        .values("day")
        .annotate(total=Sum("amount"))
        .values_list("day", "total")
    )
    # the total budget as it stood at the end of each day, from the ledger's budget changes
    changes = list(
        LedgerEntry.objects.filter(campaign=campaign, kind=LedgerEntry.Kind.BUDGET_TOTAL)
        .order_by("recorded_at", "id")
        .values_list("day", "amount", "balance")
    )
    initial = campaign.budget_total
    if changes:
        first_change = changes[0]
        initial = (first_change[2] or Decimal(0)) - first_change[1]
    days = (last - first).days + 1
    out = []
    cumulative = Decimal(0)
    budget = initial
    pending = list(changes)
    day = first
    while day <= until:
        while pending and pending[0][0] <= day:
            budget = pending.pop(0)[2]
        spent = spend.get(day, Decimal(0))
        cumulative += spent
        elapsed = (day - first).days + 1
        out.append(
            {
                "day": day,
                "spend": spent,
                "cumulative": cumulative,
                "budget": budget,
                "pacing": None if budget is None else (budget * elapsed / days).quantize(Decimal("0.01")),
            }
        )
        day += timedelta(days=1)
    return out
