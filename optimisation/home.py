"""The admin's home page: a workspace at a glance (here, in the top layer, since it reads every app).

The customer base (by age band, region, value over the last year, RFM segment and persona when
they are computed, consent coverage by channel), the running campaigns with their pacing, and what
needs attention (rules that acted, audiences that failed, data-subject requests due soon). Each
figure is one set-based query; the base's figures are kept a few minutes in the cache, since the
home page is opened often and they move slowly.
"""

from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.db.models import Case, CharField, Count, Sum, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Workspace
from audiences.models import Audience
from campaigns.models import Campaign
from campaigns.services import spend_planned_today
from core.time import years_ago
from customers.models import Channel, Order, Profile
from insights.models import Persona, RfmScore, RfmSegment
from insights.rfm import current_rfm_run
from optimisation.models import RuleEvaluation
from privacy.models import ConsentPurpose, DataSubjectRequest
from privacy.selectors import contactable_counts

CACHE_SECONDS = 300
AGE_BANDS = [
    ("18-24", 18, 25),
    ("25-34", 25, 35),
    ("35-44", 35, 45),
    ("45-54", 45, 55),
    ("55-64", 55, 65),
    ("65+", 65, 150),
]
VALUE_BANDS = [("1-49", 0, 50), ("50-199", 50, 200), ("200-499", 200, 500), ("500+", 500, None)]
TOP_REGIONS = 8
CONSENT_CHANNELS = [Channel.EMAIL, Channel.SMS, Channel.PUSH, Channel.POST, Channel.DISPLAY, Channel.SOCIAL]
DUE_WITHIN_DAYS = 7


def _bars(rows: list[tuple[str, int]], total: int) -> list[dict[str, Any]]:
    return [{"label": label, "count": n, "share": round(100 * n / total, 1) if total else 0.0} for label, n in rows]


def base_overview(*, workspace: Workspace) -> dict[str, Any]:
    """The customer base's figures (cached a few minutes per workspace and language)."""
    key = f"cible:home:{workspace.pk}:{_('Unknown')}"
    found = cache.get(key)
    if found is None:
        found = _base_overview(workspace)
        cache.set(key, found, CACHE_SECONDS)
    return found


def _base_overview(workspace: Workspace) -> dict[str, Any]:
    people = Profile.objects.filter(workspace=workspace).not_erased()
    total = people.count()
    today = timezone.localdate()
    band = Case(
        *(
            When(birth_date__gt=years_ago(today, high), birth_date__lte=years_ago(today, low), then=Value(name))
            for name, low, high in AGE_BANDS
        ),
        default=Value(""),
        output_field=CharField(),
    )
    ages = dict(people.annotate(_band=band).values_list("_band").annotate(n=Count("*")).values_list("_band", "n"))
    age_rows = [(name, ages.get(name, 0)) for name, _low, _high in AGE_BANDS] + [(_("Unknown"), ages.get("", 0))]

    regions = list(
        people.exclude(region="")
        .values_list("region")
        .annotate(n=Count("*"))
        .order_by("-n", "region")[: TOP_REGIONS + 1]
    )
    region_rows = [(name, n) for name, n in regions[:TOP_REGIONS]]
    shown = sum(n for _name, n in region_rows)
    if shown < total:
        region_rows.append((_("Other or unknown"), total - shown))

    return {
        "total": total,
        "ages": _bars(age_rows, total),
        "regions": _bars(region_rows, total),
        "values": _bars(_value_rows(workspace, total), total),
        "rfm": _bars(_rfm_rows(workspace), total),
        "personas": [
            {"label": p.name, "count": p.size, "share": round(100 * p.share, 1)}
            for p in Persona.objects.filter(workspace=workspace, active=True).order_by("-size")
        ],
        "consent": _bars(_consent_rows(workspace, people), total),
        "currency": workspace.currency,
    }


def _value_rows(workspace: Workspace, total: int) -> list[tuple[str, int]]:
    """People by what they spent on completed orders over the last 365 days: one grouping of the
    orders by person, then one count by band."""
    per_person = (
        Order.objects.filter(
            workspace=workspace,
            status=Order.Status.COMPLETED,
            ordered_at__gte=timezone.now() - timedelta(days=365),
            profile__erased_at__isnull=True,
        )
        .values("profile_id")
        .order_by()
        .annotate(spent=Sum("amount"))
        .values("spent")
    )
    sql, params = per_person.query.sql_with_params()
    cases = " ".join(
        f"WHEN s.spent >= {low} AND s.spent < {high} THEN '{name}'"
        if high is not None
        else f"WHEN s.spent >= {low} THEN '{name}'"
        for name, low, high in VALUE_BANDS
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT CASE {cases} END, count(*) FROM ({sql}) s GROUP BY 1", params)
        counts = dict(cursor.fetchall())
    buyers = sum(counts.values())
    return [(_("No purchase"), total - buyers)] + [(name, counts.get(name, 0)) for name, _low, _high in VALUE_BANDS]


def _rfm_rows(workspace: Workspace) -> list[tuple[str, int]]:
    run = current_rfm_run(workspace_id=workspace.pk)
    if run is None:
        return []
    names = dict(RfmSegment.objects.filter(workspace=workspace).values_list("code", "name"))
    counts = RfmScore.objects.filter(run=run).values_list("segment").annotate(n=Count("*")).order_by("-n")
    return [(names.get(code, code), n) for code, n in counts]


def _consent_rows(workspace: Workspace, people) -> list[tuple[str, int]]:
    pairs = [(ConsentPurpose.DIRECT_MARKETING.value, channel.value) for channel in CONSENT_CHANNELS]
    counts = contactable_counts(profile_ids=people.values("pk"), workspace_id=workspace.pk, pairs=pairs)
    labels = dict(Channel.choices)
    return [(str(labels[channel]), counts[(purpose, channel)]) for purpose, channel in pairs]


def running_campaigns(*, workspace: Workspace) -> list[dict[str, Any]]:
    """Active campaigns with their spend against budget and today's plan."""
    rows = []
    for campaign in Campaign.objects.filter(workspace=workspace, status=Campaign.Status.ACTIVE).order_by("ends_at")[
        :20
    ]:
        planned = spend_planned_today(campaign=campaign)
        share = round(100 * campaign.spent / campaign.budget_total, 1) if campaign.budget_total else None
        rows.append(
            {
                "campaign": campaign,
                "spent": campaign.spent,
                "budget": campaign.budget_total,
                "share": share,
                "planned_today": planned,
                "ends_at": campaign.ends_at,
            }
        )
    return rows


def alerts(*, workspace: Workspace) -> list[str]:
    """What needs attention: rules that acted in the last week, audiences whose last computation
    failed, data-subject requests due within a week (or late)."""
    now = timezone.now()
    found: list[str] = []
    acted = (
        RuleEvaluation.objects.filter(
            workspace=workspace, outcome=RuleEvaluation.Outcome.ACTED, at__gte=now - timedelta(days=7)
        )
        .select_related("rule", "campaign")
        .order_by("-at")[:10]
    )
    for evaluation in acted:
        found.append(
            _("Rule “%(rule)s” acted on “%(campaign)s”: %(detail)s")
            % {"rule": evaluation.rule.name, "campaign": evaluation.campaign.name, "detail": evaluation.detail}
        )
    failed = Audience.objects.filter(segment__workspace=workspace, status=Audience.Status.FAILED).select_related(
        "segment"
    )
    for audience in failed[:10]:
        found.append(_("The audience of “%(segment)s” failed to compute.") % {"segment": audience.segment.name})
    today = timezone.localdate()
    open_requests = DataSubjectRequest.objects.filter(
        workspace=workspace,
        status__in=[DataSubjectRequest.Status.RECEIVED, DataSubjectRequest.Status.IN_PROGRESS],
        due_on__lte=today + timedelta(days=DUE_WITHIN_DAYS),
    ).order_by("due_on")
    for request in open_requests[:10]:
        text = (
            _("A request (%(kind)s) is late: it was due on %(due)s.")
            if request.due_on < today
            else _("A request (%(kind)s) is due on %(due)s.")
        )
        found.append(text % {"kind": request.get_kind_display(), "due": request.due_on})
    return found


def home_overview(*, workspace: Workspace) -> dict[str, Any]:
    return {
        "workspace": workspace,
        "base": base_overview(workspace=workspace),
        "campaigns": running_campaigns(workspace=workspace),
        "alerts": alerts(workspace=workspace),
    }
