"""RFM: recency, frequency and monetary scores 1-5 by quintile, as of a date, and named segments.

Who: every profile with at least one completed order up to `as_of` (cancelled and refunded
orders do not count), not erased, whose consent to profiling is not refused.
Values: recency = whole days from the last order to `as_of`; frequency = completed orders;
monetary = their total amount.

Scores, set-based in one statement (window functions): a value's score is
`1 + floor(5 x (rank - 1) / n)`, where `rank` is its position in ascending order of merit
(oldest last order first for R; fewest orders, smallest amount first for F and M) taken as the
*lowest* position of its group of equal values (SQL RANK), and n the number of customers.
Equal values therefore always get equal scores, whatever the order the database reads them
in; when a group of ties fills a quintile boundary, the whole group takes the score of the
quintile where it starts, and the next scores may be skipped (if 55 % of customers have one
order, all of them have F = 1 and the next group starts at F = 3). `boundaries` records, per
score and grade, the range of values it covers.

Named segments are ordered ranges of (R, F, M); the first that matches wins
(`RfmSegment`). The default order makes each of the ten reachable (tests/insights prove it):
the narrow segments (Can't lose them, New, Promising) come before the broad ones that
would otherwise swallow them.
"""

from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Avg, Count, Max, Min, Sum
from django.utils import timezone

from accounts.models import Workspace
from core.statistics import rows_written
from insights.models import RfmRun, RfmScore, RfmSegment
from privacy.models import ConsentPurpose, ConsentRecord, ConsentStatus
from segments.models import JobStatus

# (code, name, description, r range, f range, m range), first match wins.
DEFAULT_SEGMENTS: list[tuple[str, str, str, tuple[int, int], tuple[int, int], tuple[int, int]]] = [
    ("champions", "Champions", "Bought recently, buy often and spend the most.", (4, 5), (4, 5), (4, 5)),
    ("cant_lose_them", "Can't lose them", "Bought often and big, but long ago.", (1, 1), (4, 5), (4, 5)),
    ("need_attention", "Need attention", "Bought fairly often, some time ago, small baskets.", (3, 3), (3, 5), (1, 2)),
    ("loyal", "Loyal", "Buy regularly.", (2, 5), (3, 5), (1, 5)),
    ("new", "New", "Bought for the first time recently.", (5, 5), (1, 1), (1, 5)),
    ("promising", "Promising", "Recent shoppers who have not spent much yet.", (4, 4), (1, 1), (1, 5)),
    ("potential_loyalist", "Potential loyalist", "Recent customers with a few orders.", (3, 5), (1, 3), (1, 5)),
    ("at_risk", "At risk", "Bought often or spent well, a while ago.", (1, 2), (2, 5), (1, 5)),
    ("about_to_sleep", "About to sleep", "Below average recency and frequency.", (2, 2), (1, 1), (1, 5)),
    ("lost", "Lost", "Last order long ago, few orders.", (1, 1), (1, 1), (1, 5)),
]


def rfm_segments(*, workspace: Workspace) -> list[RfmSegment]:
    """The workspace's named segments, in order; the defaults the first time."""
    segments = list(RfmSegment.objects.filter(workspace=workspace))
    if segments:
        return segments
    RfmSegment.objects.bulk_create(
        [
            RfmSegment(
                workspace=workspace,
                code=code,
                name=name,
                description=description,
                position=position,
                r_min=r[0],
                r_max=r[1],
                f_min=f[0],
                f_max=f[1],
                m_min=m[0],
                m_max=m[1],
            )
            for position, (code, name, description, r, f, m) in enumerate(DEFAULT_SEGMENTS, start=1)
        ],
        ignore_conflicts=True,
    )
    return list(RfmSegment.objects.filter(workspace=workspace))


def segment_of(segments: list[RfmSegment], r: int, f: int, m: int) -> str:
    for segment in segments:
        if segment.matches(r, f, m):
            return segment.code
    return ""


def reachability(segments: list[RfmSegment]) -> dict[str, int]:
    """How many of the 125 (R, F, M) cells each segment wins, in order (0: unreachable); "" counts
    the cells no segment matches."""
    won: dict[str, int] = {s.code: 0 for s in segments}
    won[""] = 0
    for r in range(1, 6):
        for f in range(1, 6):
            for m in range(1, 6):
                won[segment_of(segments, r, f, m)] += 1
    return won


def current_rfm_run(*, workspace_id: int) -> RfmRun | None:
    return RfmRun.current(workspace_id=workspace_id)


def _seconds(expr: str) -> str:
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {expr})"
    return f"CAST(strftime('%%s', {expr}) AS INTEGER)"


def rfm_compute(*, workspace: Workspace, as_of: datetime | None = None, progress=None) -> RfmRun:
    """Score every customer as of `as_of` (now), assign the named segments, and record the
    distribution and the migration since the previous run."""
    as_of = as_of or timezone.now()
    segments = rfm_segments(workspace=workspace)
    previous = current_rfm_run(workspace_id=workspace.pk)
    with transaction.atomic():
        version = RfmRun.next_version(workspace)
        run = RfmRun.objects.create(workspace=workspace, version=version, as_of=as_of, previous=previous)
    if progress:
        progress(20, "Scoring the customers")
    at = connection.ops.adapt_datetimefield_value(as_of)
    refused = (
        ConsentRecord.objects.filter(workspace_id=workspace.pk, purpose=ConsentPurpose.PROFILING)
        .valid_at(as_of)
        .exclude(status=ConsentStatus.GRANTED)
    )
    refused_sql, refused_params = refused.values("profile_id").query.sql_with_params()
    days = f"(({_seconds('%s')} - {_seconds('c.last_at')}) / 86400)"
    if connection.vendor == "postgresql":
        days = f"floor({days})::int"
    table = RfmScore._meta.db_table
    sql = f"""
        INSERT INTO {table} (workspace_id, run_id, profile_id, recency_days, frequency, monetary, r, f, m, segment)
        SELECT %s, %s, s.profile_id, s.rd, s.fq, s.mon,
               1 + (5 * (s.rr - 1)) / s.n, 1 + (5 * (s.fr - 1)) / s.n, 1 + (5 * (s.mr - 1)) / s.n, ''
        FROM (
            SELECT d.*, COUNT(*) OVER () AS n,
                   RANK() OVER (ORDER BY d.rd DESC) AS rr,
                   RANK() OVER (ORDER BY d.fq) AS fr,
                   RANK() OVER (ORDER BY d.mon) AS mr
            FROM (
                SELECT c.profile_id, {days} AS rd, c.fq, c.mon
                FROM (
                    SELECT o.profile_id, COUNT(*) AS fq, SUM(o.amount) AS mon, MAX(o.ordered_at) AS last_at
                    FROM customers_order o
                    WHERE o.workspace_id = %s AND o.status = 'completed' AND o.ordered_at <= %s
                    GROUP BY o.profile_id
                ) c
                JOIN customers_profile p ON p.id = c.profile_id
                WHERE p.erased_at IS NULL
                  AND NOT EXISTS (SELECT 1 FROM ({refused_sql}) _r WHERE _r.profile_id = c.profile_id)
            ) d
        ) s
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [workspace.pk, run.pk, at, workspace.pk, at, *refused_params])
        written = cursor.rowcount
    rows_written(model=RfmScore, rows=written, wait=True)
    if progress:
        progress(70, "Assigning the named segments")
    _assign(run, segments)
    RfmRun.objects.filter(pk=run.pk).update(
        customers=written,
        boundaries=_boundaries(run),
        distribution=_distribution(run, segments),
        migration=_migration(run, previous),
        status=JobStatus.READY,
    )
    # Keep this run and the one before it (for the migration view).
    RfmScore.objects.filter(workspace_id=workspace.pk).exclude(
        run_id__in=[run.pk, previous.pk if previous else 0]
    ).delete()
    run.refresh_from_db()
    return run


def _assign(run: RfmRun, segments: list[RfmSegment]) -> None:
    """One UPDATE: each score row takes the first segment whose ranges hold."""
    cases: list[str] = []
    params: list[Any] = []
    for s in segments:
        cases.append("WHEN r BETWEEN %s AND %s AND f BETWEEN %s AND %s AND m BETWEEN %s AND %s THEN %s")
        params += [s.r_min, s.r_max, s.f_min, s.f_max, s.m_min, s.m_max, s.code]
    table = RfmScore._meta.db_table
    case = f"CASE {' '.join(cases)} ELSE '' END" if cases else "''"
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET segment = {case} WHERE run_id = %s", [*params, run.pk])


def rfm_segments_apply(*, workspace: Workspace) -> RfmRun | None:
    """After the named segments were edited: re-assign the current run (one UPDATE) and its distribution."""
    run = current_rfm_run(workspace_id=workspace.pk)
    if run is None:
        return None
    segments = rfm_segments(workspace=workspace)
    _assign(run, segments)
    previous = RfmRun.objects.filter(pk=run.previous_id or 0).first()
    if previous is not None:
        _assign(previous, segments)  # its scores, while kept (no row otherwise)
    RfmRun.objects.filter(pk=run.pk).update(
        distribution=_distribution(run, segments), migration=_migration(run, previous)
    )
    run.refresh_from_db()
    return run


def _boundaries(run: RfmRun) -> dict[str, list[dict[str, Any]]]:
    scores = RfmScore.objects.filter(run=run)
    out: dict[str, list[dict[str, Any]]] = {}
    for score, value in (("r", "recency_days"), ("f", "frequency"), ("m", "monetary")):
        rows = scores.values(score).annotate(low=Min(value), high=Max(value), customers=Count("*")).order_by(score)
        out[score] = [
            {"score": row[score], "from": _plain(row["low"]), "to": _plain(row["high"]), "customers": row["customers"]}
            for row in rows
        ]
    return out


def _plain(value: Any) -> Any:
    return str(value) if not isinstance(value, int) else value


def _distribution(run: RfmRun, segments: list[RfmSegment]) -> list[dict[str, Any]]:
    rows = {
        row["segment"]: row
        for row in RfmScore.objects.filter(run=run)
        .values("segment")
        .annotate(n=Count("*"), recency=Avg("recency_days"), frequency=Avg("frequency"), monetary=Sum("monetary"))
    }
    total = sum(row["n"] for row in rows.values()) or 1
    names = {s.code: s.name for s in segments}
    out = []
    for code in [*(s.code for s in segments), ""]:
        row = rows.get(code)
        if row is None and code == "":
            continue
        n = row["n"] if row else 0
        out.append(
            {
                "segment": code,
                "name": names.get(code, "Unclassified"),
                "customers": n,
                "share": round(n / total, 4),
                "avg_recency_days": round(row["recency"], 1) if row else None,
                "avg_frequency": round(row["frequency"], 2) if row else None,
                "monetary": str(row["monetary"]) if row else "0",
            }
        )
    return out


def _migration(run: RfmRun, previous: RfmRun | None) -> list[dict[str, Any]]:
    """How many customers went from each segment of the previous run to each of this one."""
    if previous is None:
        return []
    table = RfmScore._meta.db_table
    # The customers of this run, from their previous segment (or none), then those who left.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT COALESCE(o.segment, '(none)'), n.segment, COUNT(*)
                FROM {table} n LEFT JOIN {table} o ON o.run_id = %s AND o.profile_id = n.profile_id
                WHERE n.run_id = %s GROUP BY 1, 2
                UNION ALL
                SELECT o.segment, '(none)', COUNT(*) FROM {table} o
                WHERE o.run_id = %s
                  AND NOT EXISTS (SELECT 1 FROM {table} n WHERE n.run_id = %s AND n.profile_id = o.profile_id)
                GROUP BY 1, 2 ORDER BY 3 DESC""",
            [previous.pk, run.pk, previous.pk, run.pk],
        )
        return [{"from": a, "to": b, "customers": n} for a, b, n in cursor.fetchall()]
