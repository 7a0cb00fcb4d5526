"""Quantification of a segment: which criteria are over-represented, by index and volume.

For each value of each categorical criterion: the count in the segment (n_seg),
its share there (p_seg = n_seg / N_seg), its share in the workspace's base
(p_base), the index p_seg / p_base x 100 and the z-score of the difference,
(p_seg - p_base) / sqrt(p_base (1 - p_base) / N_seg). A row is over-represented
when index >= 120, n_seg >= 100 and |z| >= 2 (thresholds configurable); rows
rank by excess members, n_seg - N_seg x p_base. Every count is one GROUP BY.
"""

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from django.db import connection
from django.db.models import Case, CharField, Count, F, QuerySet, Value, When
from django.utils import timezone

from core.time import years_ago
from customers.models import Event, Profile

AGE_BANDS = [
    ("18-24", 18, 24),
    ("25-34", 25, 34),
    ("35-44", 35, 44),
    ("45-54", 45, 54),
    ("55-64", 55, 64),
    ("65+", 65, 200),
]
CHANNEL_WINDOW = timedelta(days=90)


@dataclass(frozen=True)
class Thresholds:
    min_index: float = 120.0
    min_count: int = 100
    min_abs_z: float = 2.0


@dataclass
class IndexRow:
    criterion: str
    value: str
    n_seg: int
    p_seg: float
    n_base: int
    p_base: float
    index: float | None
    z: float | None
    excess: float
    over_represented: bool


def index_rows(
    *, counts: Iterable[tuple[str, str, int, int]], segment_size: int, base_size: int, thresholds: Thresholds
) -> list[IndexRow]:
    """The arithmetic, from (criterion, value, n_seg, n_base) counts; kept pure so it can be checked by hand."""
    rows = []
    for criterion, value, n_seg, n_base in counts:
        p_seg = n_seg / segment_size if segment_size else 0.0
        p_base = n_base / base_size if base_size else 0.0
        index = p_seg / p_base * 100 if p_base else None
        z = (
            (p_seg - p_base) / math.sqrt(p_base * (1 - p_base) / segment_size)
            if segment_size and 0 < p_base < 1
            else None
        )
        over = (
            index is not None
            and z is not None
            and index >= thresholds.min_index
            and n_seg >= thresholds.min_count
            and abs(z) >= thresholds.min_abs_z
        )
        rows.append(
            IndexRow(
                criterion,
                value,
                n_seg,
                round(p_seg, 6),
                n_base,
                round(p_base, 6),
                None if index is None else round(index, 2),
                None if z is None else round(z, 3),
                round(n_seg - segment_size * p_base, 2),
                over,
            )
        )
    rows.sort(key=lambda row: (not row.over_represented, -row.excess))
    return rows


def _age_band() -> Case:
    today = timezone.localdate()
    whens = [
        When(birth_date__lte=years_ago(today, low), birth_date__gt=years_ago(today, high + 1), then=Value(label))
        for label, low, high in AGE_BANDS
    ]
    return Case(*whens, default=Value("unknown"), output_field=CharField())


def _grouped(qs: QuerySet[Profile], expression) -> dict[str, int]:
    return {
        (value if value not in (None, "") else "unknown"): n
        for value, n in qs.annotate(_v=expression).values_list("_v").annotate(n=Count("id")).values_list("_v", "n")
    }


def _interests(qs: QuerySet[Profile]) -> dict[str, int]:
    sql, params = qs.values("pk").query.sql_with_params()
    if connection.vendor == "postgresql":
        query = (
            "SELECT i.value, count(*) FROM customers_profile p "
            "CROSS JOIN LATERAL jsonb_array_elements_text(CASE WHEN jsonb_typeof(p.attributes->'interests') = 'array' "
            "THEN p.attributes->'interests' ELSE '[]'::jsonb END) AS i(value) "
            f"WHERE p.id IN ({sql}) GROUP BY i.value"
        )
    else:
        query = (
            "SELECT i.value, count(*) FROM customers_profile p, json_each(p.attributes, '$.interests') AS i "
            f"WHERE p.id IN ({sql}) AND json_type(p.attributes, '$.interests') = 'array' GROUP BY i.value"
        )
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return dict(cursor.fetchall())


def _channels(qs: QuerySet[Profile], workspace_id: int) -> dict[str, int]:
    """People who used each channel in the last 90 days."""
    since = timezone.now() - CHANNEL_WINDOW
    events = Event.objects.filter(workspace_id=workspace_id, occurred_at__gte=since, profile_id__in=qs.values("pk"))
    return dict(events.values("channel").annotate(n=Count("profile_id", distinct=True)).values_list("channel", "n"))


def criterion_counts(qs: QuerySet[Profile], workspace_id: int) -> dict[str, dict[str, int]]:
    return {
        "gender": _grouped(qs, F("gender")),
        "age_band": _grouped(qs, _age_band()),
        "socio_professional_category": _grouped(qs, F("socio_professional_category")),
        "region": _grouped(qs, F("region")),
        "lifecycle_stage": _grouped(qs, F("lifecycle_stage")),
        "interest": _interests(qs),
        "channel": _channels(qs, workspace_id),
    }


def segment_index(
    *, members: QuerySet[Profile], base: QuerySet[Profile], workspace_id: int, thresholds: Thresholds
) -> dict[str, Any]:
    segment_size = members.count()
    base_size = base.count()
    seg_counts = criterion_counts(members, workspace_id)
    base_counts = criterion_counts(base, workspace_id)
    counts = [
        (criterion, value, seg_counts[criterion].get(value, 0), n_base)
        for criterion, values in base_counts.items()
        for value, n_base in values.items()
    ]
    rows = index_rows(counts=counts, segment_size=segment_size, base_size=base_size, thresholds=thresholds)
    return {"segment_size": segment_size, "base_size": base_size, "rows": [asdict(row) for row in rows]}
