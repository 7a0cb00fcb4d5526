"""Lookalikes (twin profiles): the eligible base ranked by similarity to a seed segment.

Similarity is the seed's membership model (insights.prediction): a calibrated classifier of
"looks like a seed member" learnt on every facet. Nearest neighbours in feature space were the
other choice; they weigh every feature alike (a postcode as much as a purchase history), need
a distance over mixed units, and cost a search per profile, whereas the model learns which
features tell the seed apart and scores a million profiles in seconds. Its score ranks.

Eligible: profiles not in the seed, neither erased nor suppressed, whose consent for the
lookalike's purpose and channel is in force. Bands: band k holds the profiles ranked between
(k - 1) % and k % of the eligible base (ties broken by profile id, so bands have exact sizes);
the band segments are cumulative (the 3 % segment is bands 1 to 3). One INSERT ... SELECT with
a window function writes them under a new version; the band segments' audiences are then
refreshed. The evaluation comes from the model's held-out rows: seed members it never learnt
from, and the share of them each band recovers, with its precision.
"""

from django.db import connection, transaction
from django.db.models import Count, Max
from django.utils import timezone

from audiences.services import audience_refresh_request
from core.sql import temporary_rows
from core.statistics import rows_written
from customers.models import Profile
from insights.models import BANDS, Lookalike, LookalikeMember, PredictiveModel
from insights.prediction import NotTrainable, membership_train
from privacy.selectors import profiles_reachable
from segments.membership import current_audience
from segments.models import JobStatus, Segment
from segments.services import segment_create


def band_name(lookalike: Lookalike, band: int) -> str:
    return f"Lookalikes {band}% of {lookalike.seed.name} ({lookalike.purpose}/{lookalike.channel})"[:120]


def band_segments_ensure(*, lookalike: Lookalike, owner=None) -> list[Segment]:
    """The ten band segments (1 % to 10 %), created with the lookalike."""
    found: dict[int, Segment] = {
        (s.definition or {})["lookalike"]["band"]: s
        for s in Segment.objects.filter(workspace_id=lookalike.workspace_id, definition__lookalike__id=lookalike.pk)
    }
    for band in range(1, BANDS + 1):
        if band not in found:
            found[band] = segment_create(
                workspace=lookalike.workspace,
                name=band_name(lookalike, band),
                description=f"The {band} % of the eligible base most similar to {lookalike.seed.name}.",
                kind=Segment.Kind.DYNAMIC,
                definition={"lookalike": {"id": lookalike.pk, "band": band}},
                owner=owner,
            )
    return [found[band] for band in range(1, BANDS + 1)]


def seed_model(*, lookalike: Lookalike) -> PredictiveModel:
    model, _ = PredictiveModel.objects.get_or_create(
        workspace_id=lookalike.workspace_id,
        kind=PredictiveModel.Kind.MEMBERSHIP,
        segment=lookalike.seed,
        defaults={"name": f"Membership of {lookalike.seed.name}"[:120]},
    )
    return model


def lookalike_compute(*, lookalike: Lookalike, progress=lambda pct, step: None) -> Lookalike:
    seed = lookalike.seed
    current = current_audience(segment=seed)
    if current is None:
        raise NotTrainable(f"The audience of seed segment {seed.name!r} has not been computed yet: refresh it first.")
    model = seed_model(lookalike=lookalike)
    stale = model.trained_at is None or (seed.audience.computed_at and model.trained_at < seed.audience.computed_at)
    if model.version == 0 or stale:
        progress(10, "Training the seed's membership model")
        model = membership_train(model=model, progress=lambda pct, step: progress(10 + pct * 6 // 10, step))
        PredictiveModel.objects.filter(pk=model.pk).update(status=JobStatus.READY)
    progress(75, "Ranking the eligible base")
    now = timezone.now()
    eligible = profiles_reachable(
        profiles=Profile.objects.filter(workspace_id=lookalike.workspace_id),
        workspace_id=lookalike.workspace_id,
        purpose=lookalike.purpose,
        channel=lookalike.channel,
        at=now,
    ).values("pk")
    eligible_sql, eligible_params = eligible.query.sql_with_params()
    seed_sql, seed_params = current.members.query.sql_with_params()
    version = (
        LookalikeMember.objects.filter(lookalike=lookalike).aggregate(v=Max("version"))["v"] or lookalike.version
    ) + 1
    candidates = f"""
        SELECT s.profile_id, s.score FROM insights_score s
        WHERE s.model_id = %s AND s.version = %s
          AND s.profile_id IN ({eligible_sql})
          AND NOT EXISTS (SELECT 1 FROM ({seed_sql}) m WHERE m.profile_id = s.profile_id)
    """
    table = LookalikeMember._meta.db_table
    with (
        transaction.atomic(),
        temporary_rows(candidates, [model.pk, model.version, *eligible_params, *seed_params]) as ranked,
    ):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {ranked}")
            eligible_count = cursor.fetchone()[0]
            band_of = f"((r.rn - 1) * 100) / {int(eligible_count) or 1} + 1"
            cursor.execute(
                f"""INSERT INTO {table} (workspace_id, lookalike_id, version, profile_id, band)
                    SELECT %s, %s, %s, r.profile_id, {band_of} FROM (
                        SELECT profile_id, ROW_NUMBER() OVER (ORDER BY score DESC, profile_id) AS rn FROM {ranked}
                    ) r WHERE {band_of} <= %s""",
                [lookalike.workspace_id, lookalike.pk, version, BANDS],
            )
            written = cursor.rowcount
    rows_written(model=LookalikeMember, rows=written, wait=True)
    sizes = dict(
        LookalikeMember.objects.filter(lookalike=lookalike, version=version)
        .values_list("band")
        .annotate(n=Count("*"))
        .values_list("band", "n")
    )
    segments = band_segments_ensure(lookalike=lookalike)
    cumulative, bands = 0, []
    for band, segment in zip(range(1, BANDS + 1), segments, strict=True):
        cumulative += sizes.get(band, 0)
        bands.append({"band": band, "size": cumulative, "segment": segment.pk})
    with transaction.atomic():
        previous = Lookalike.objects.select_for_update().get(pk=lookalike.pk).version
        Lookalike.objects.filter(pk=lookalike.pk, version__lt=version).update(
            version=version,
            model=model,
            eligible=eligible_count,
            bands=bands,
            evaluation=model.metrics.get("bands", {}),
            computed_at=timezone.now(),
            error="",
        )
    LookalikeMember.objects.filter(lookalike=lookalike, version__lt=previous).delete()
    progress(90, "Refreshing the band segments")
    for segment in segments:
        audience_refresh_request(segment=segment, trigger="lookalike")
    lookalike.refresh_from_db()
    return lookalike
