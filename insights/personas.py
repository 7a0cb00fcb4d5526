"""Personas: a strategic segmentation of the base by k-means on standardised features.

Features: every facet but consent (what someone agreed to is not who they are), or the
attitudinal facet alone (survey answers and interests) for a survey-based segmentation, or the
behavioural and transactional facets. Missing values: a count that never happened is 0, a
"days since" that never happened is the longest observed plus one, a missing number (age, a
survey score) the median. Counts and amounts are log-scaled (log 1 + x) before standardising,
so that a few big spenders do not make a cluster of their own.

k: chosen by the user, or suggested as the k from 2 to 8 with the best silhouette on a sample
(the inertia of each k is reported too, for the elbow). Mini-batch k-means past 20,000 profiles.

Each persona: size, share, centroid in readable units (the mean of the raw features of its
members), its index against the base (share of members with a trait / share of the base x
100, volume in members), and a suggested name from its two most over-represented traits,
editable. A re-run matches the new centroids to the previous ones (Hungarian assignment on the
distance between standardised centroids), so a persona keeps its number and its segment and
campaigns on it keep working; it reports the adjusted Rand index between the two runs'
assignments, and the drift (share of profiles present in both that changed persona).
"""

from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Max
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.preprocessing import StandardScaler

from audiences.services import audience_refresh_request
from core.sql import arrays_copy
from core.statistics import rows_written
from insights.features import Matrix, feature_matrix, features_current
from insights.models import Persona, PersonaMember, PersonaRun
from segments.models import JobStatus, Segment
from segments.services import segment_create, segment_update

K_RANGE = range(2, 9)
SAMPLE = 10_000
MINI_BATCH_FROM = 20_000
MIN_INDEX = 120


def _columns(matrix: Matrix, facets: str) -> list[str]:
    if facets == PersonaRun.Facets.ATTITUDINAL:
        wanted = {"attitudinal"}
    elif facets == PersonaRun.Facets.BEHAVIOURAL:
        wanted = {"behavioural", "transactional"}
    else:
        wanted = {"demographic", "geographic", "attitudinal", "behavioural", "transactional"}
    return [c.name for c in matrix.columns if c.facet in wanted]


def _prepare(matrix: Matrix) -> tuple[np.ndarray, np.ndarray]:
    """(readable values with the gaps filled, the transformed values k-means sees)."""
    raw = matrix.X.copy()  # float32: a million profiles by a hundred features is 400 MB a copy
    for i, col in enumerate(matrix.columns):
        column = raw[:, i]
        gaps = np.isnan(column)
        if not gaps.any():
            continue
        if col.kind == "since":
            fill = (np.nanmax(column) + 1) if (~gaps).any() else 0.0
        elif col.kind == "flag" or col.source[:1] in (("event",), ("channel",)):
            fill = 0.0
        else:
            fill = float(np.nanmedian(column)) if (~gaps).any() else 0.0
        column[gaps] = fill
    transformed = raw.copy()
    for i, col in enumerate(matrix.columns):
        if col.kind == "number" and col.source[:1] in (("event",), ("channel",), ("orders",)):
            transformed[:, i] = np.log1p(np.maximum(transformed[:, i], 0))
    return raw, transformed


def _suggest_k(Z: np.ndarray, seed: int = 0) -> tuple[int, list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    sample = Z[rng.choice(len(Z), size=min(SAMPLE, len(Z)), replace=False)]
    scores: list[dict[str, Any]] = []
    for k in K_RANGE:
        if k >= len(sample):
            break
        fit = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(sample)
        sil = float(silhouette_score(sample, fit.labels_, sample_size=min(5000, len(sample)), random_state=seed))
        scores.append({"k": k, "inertia": round(float(fit.inertia_), 2), "silhouette": round(sil, 4)})
    best = int(max(scores, key=lambda s: s["silhouette"])["k"]) if scores else 2
    return best, scores


def _index(raw: np.ndarray, labels: np.ndarray, k: int, matrix: Matrix) -> tuple[np.ndarray, list[list[dict]]]:
    """Per cluster: readable centroid (means), and its over-represented traits (index and volume)."""
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    sums = np.zeros((k, raw.shape[1]))
    for cluster in range(k):  # one vectorised sum a cluster (np.add.at goes row by row)
        sums[cluster] = raw[labels == cluster].sum(axis=0, dtype=np.float64)
    means = sums / np.maximum(counts, 1)[:, None]
    base = raw.mean(axis=0, dtype=np.float64)
    traits: list[list[dict]] = []
    for c in range(k):
        rows = []
        for i, col in enumerate(matrix.columns):
            if base[i] <= 0:
                continue
            index = 100.0 * means[c, i] / base[i]
            if index < MIN_INDEX:
                continue
            trait = {"feature": col.name, "label": col.label, "source": list(col.source), "index": round(index)}
            if col.kind == "flag":
                volume = int(round(means[c, i] * counts[c]))
                if means[c, i] >= 0.05 and volume >= 1:
                    rows.append(
                        {**trait, "share": round(means[c, i], 4), "base_share": round(base[i], 4), "members": volume}
                    )
            elif col.kind == "number":
                rows.append({**trait, "mean": round(means[c, i], 2), "base_mean": round(base[i], 2)})
        # Ranked by index weighted by volume: a trait many members share beats a rare one.
        rows.sort(key=lambda r: -r["index"] * (r.get("share", 0.5) ** 0.5))
        traits.append(rows[:12])
    return means, traits


def _name(traits: list[dict], number: int) -> str:
    """The two most over-represented traits, from different sources (not "visits in 30 days ·
    visits in 90 days")."""
    picked: list[dict] = []
    for trait in traits:
        if all(trait["source"] != other["source"] for other in picked):
            picked.append(trait)
        if len(picked) == 2:
            break
    if not picked:
        return f"Persona {number}"
    return " · ".join(t["label"] for t in picked)[:120]


def personas_compute(
    *, workspace, facets: str = "all", k: int | None = None, progress=lambda pct, step: None, seed: int = 0
) -> PersonaRun:
    features_current(workspace=workspace, progress=progress)
    progress(20, "Reading the feature matrix")
    matrix = feature_matrix(workspace=workspace)
    matrix = matrix.select(_columns(matrix, facets))
    if len(matrix.ids) < 10 or not matrix.columns:
        raise ValueError("Too few profiles or features to cluster.")
    raw, transformed = _prepare(matrix)
    Z = StandardScaler().fit_transform(transformed)
    Z = np.nan_to_num(Z)
    scores: list[dict[str, Any]] = []
    chosen_by = "user"
    if k is None:
        progress(30, "Choosing k by silhouette")
        k, scores = _suggest_k(Z, seed)
        chosen_by = "silhouette"
    k = min(k, len(matrix.ids) - 1)
    progress(50, f"Clustering into {k} personas")
    if len(Z) >= MINI_BATCH_FROM:
        fit = MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=4096, random_state=seed).fit(Z)
    else:
        fit = KMeans(n_clusters=k, n_init=5, random_state=seed).fit(Z)
    labels = fit.labels_.astype(np.int64)
    sil = float(silhouette_score(Z, labels, sample_size=min(5000, len(Z)), random_state=seed)) if k > 1 else None
    means, traits = _index(raw, labels, k, matrix)
    progress(70, "Matching the previous personas")
    previous = PersonaRun.current(workspace_id=workspace.pk)
    old = list(Persona.objects.filter(workspace=workspace, run=previous, active=True)) if previous else []
    matched: dict[int, Persona] = {}
    if old:
        # Both runs' centroids in this run's standard units (a feature the old run lacked sits at the mean).
        mean, scale = raw.mean(axis=0, dtype=np.float64), raw.std(axis=0, dtype=np.float64) + 1e-9
        previous_means = np.array(
            [[p.centroid.get(col.name, m) for col, m in zip(matrix.columns, mean, strict=True)] for p in old]
        )
        new_c, old_c = (means - mean) / scale, (previous_means - mean) / scale
        cost = ((new_c[:, None, :] - old_c[None, :, :]) ** 2).sum(axis=2)
        rows, cols = linear_sum_assignment(cost)
        matched = {int(r): old[int(c)] for r, c in zip(rows, cols, strict=True)}
    with transaction.atomic():
        version = PersonaRun.next_version(workspace)
        run = PersonaRun.objects.create(
            workspace=workspace,
            version=version,
            facets=facets,
            columns=[c.name for c in matrix.columns],
            k=k,
            k_chosen_by=chosen_by,
            k_scores=scores,
            inertia=float(fit.inertia_),
            silhouette=sil,
            profiles=len(labels),
            previous=previous,
        )
        next_number = (Persona.objects.filter(workspace=workspace).aggregate(n=Max("number"))["n"] or 0) + 1
        personas: list[Persona] = []
        for c in range(k):
            centroid = {col.name: round(float(means[c, i]), 4) for i, col in enumerate(matrix.columns)}
            size = int((labels == c).sum())
            persona = matched.get(c)
            if persona is None:
                persona = Persona(workspace=workspace, number=next_number, name=f"Persona {next_number}")
                next_number += 1
            persona.run = run
            persona.size, persona.share = size, round(size / len(labels), 4)
            persona.centroid, persona.profile, persona.active = centroid, traits[c], True
            if not persona.named_by_user:
                persona.name = _unique_name(workspace, _name(traits[c], persona.number), persona)
            persona.save()
            personas.append(persona)
        Persona.objects.filter(workspace=workspace, active=True).exclude(pk__in=[p.pk for p in personas]).update(
            active=False, size=0, share=0
        )
    persona_ids = np.array([personas[c].pk for c in range(k)], dtype=np.int64)
    arrays_copy(
        table=PersonaMember._meta.db_table,
        columns=["workspace_id", "run_id", "profile_id", "persona_id"],
        arrays=[
            np.full(len(labels), workspace.pk, dtype=np.int64),
            np.full(len(labels), run.pk, dtype=np.int64),
            matrix.ids,
            persona_ids[labels],
        ],
    )
    rows_written(model=PersonaMember, rows=len(labels), wait=True)
    ari = drift = None
    if previous is not None:
        rows = (
            PersonaMember.objects.filter(run=previous)
            .order_by("profile_id")
            .values_list("profile_id", "persona__number")
        )
        before = np.array(list(rows), dtype=np.int64).reshape(-1, 2)
        numbers = np.array([personas[c].number for c in range(k)])[labels]
        pos = np.minimum(np.searchsorted(before[:, 0], matrix.ids), max(len(before) - 1, 0))
        common = (before[pos, 0] == matrix.ids) if len(before) else np.zeros(len(labels), dtype=bool)
        if common.any():
            prev_numbers = before[pos[common], 1]
            ari = round(float(adjusted_rand_score(prev_numbers, numbers[common])), 4)
            drift = round(float((prev_numbers != numbers[common]).mean()), 4)
    PersonaRun.objects.filter(pk=run.pk).update(status=JobStatus.READY, stability_ari=ari, drift=drift)
    PersonaMember.objects.filter(workspace=workspace).exclude(
        run_id__in=[run.pk, previous.pk if previous else 0]
    ).delete()
    progress(85, "Saving the personas as segments")
    for persona in personas:
        _segment_ensure(persona)
        if persona.segment is not None:
            audience_refresh_request(segment=persona.segment, trigger="personas")
    run.refresh_from_db()
    return run


def _unique_name(workspace, name: str, persona: Persona) -> str:
    taken = set(Persona.objects.filter(workspace=workspace).exclude(pk=persona.pk).values_list("name", flat=True))
    if name not in taken:
        return name
    return f"{name[:110]} ({persona.number})"


def segment_name(persona: Persona) -> str:
    return f"Persona {persona.number}: {persona.name}"[:120]


def _segment_ensure(persona: Persona) -> None:
    if persona.segment_id is None:
        name = segment_name(persona)
        if Segment.objects.filter(workspace_id=persona.workspace_id, name=name).exists():
            name = f"{name[:100]} #{persona.pk}"
        segment = segment_create(
            workspace=persona.workspace,
            name=name,
            description="A persona of the strategic segmentation (insights).",
            kind=Segment.Kind.DYNAMIC,
            definition={"persona": persona.pk},
        )
        Persona.objects.filter(pk=persona.pk).update(segment=segment)
        persona.segment = segment
    elif persona.segment is not None and persona.segment.name != segment_name(persona):
        if not Segment.objects.filter(workspace_id=persona.workspace_id, name=segment_name(persona)).exists():
            segment_update(segment=persona.segment, name=segment_name(persona))


def persona_rename(*, persona: Persona, name: str) -> Persona:
    persona.name, persona.named_by_user = name, True
    persona.save(update_fields=["name", "named_by_user"])
    _segment_ensure(persona)
    return persona
