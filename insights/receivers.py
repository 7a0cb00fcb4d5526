"""How insights takes part in what lower apps do: recomputed audiences, merges, erasure and
access requests. Connected in InsightsConfig.ready."""

import json
from typing import Any

from django.db import models

from accounts.models import Workspace
from customers.selectors import typed_values
from insights.jobs import job_request
from insights.models import (
    ClvScore,
    FeatureSet,
    InsightJob,
    Lookalike,
    LookalikeMember,
    PersonaMember,
    PredictiveModel,
    ProfileFeatures,
    RfmScore,
    Score,
)

# What insights holds per profile: how merges and erasures count it, and the other fields of its unique key.
PER_PROFILE: dict[type[models.Model], tuple[str, tuple[str, ...]]] = {
    ProfileFeatures: ("profile_features", ("workspace",)),
    ClvScore: ("clv_scores", ("workspace", "run")),
    RfmScore: ("rfm_scores", ("workspace", "run")),
    PersonaMember: ("persona_memberships", ("workspace", "run")),
    Score: ("model_scores", ("workspace", "model", "version")),
    LookalikeMember: ("lookalike_memberships", ("workspace", "lookalike", "version")),
}


def audience_computed(sender, *, segment_id: int, workspace_id: int, **kwargs) -> None:
    """A segment's new audience: re-rank the lookalikes it seeds (which retrain its membership
    model first), or else retrain that model: scores refresh with the segment."""
    workspace = Workspace.objects.get(pk=workspace_id)
    lookalikes = list(Lookalike.objects.filter(seed_id=segment_id).values_list("pk", flat=True))
    for lookalike_id in lookalikes:
        job_request(workspace=workspace, kind=InsightJob.Kind.LOOKALIKE, subject_id=lookalike_id)
    model = PredictiveModel.objects.filter(
        segment_id=segment_id, kind=PredictiveModel.Kind.MEMBERSHIP, version__gt=0
    ).first()
    if model is not None and not lookalikes:
        job_request(workspace=workspace, kind=InsightJob.Kind.MODEL, subject_id=model.pk)


def profile_merging(sender, *, journal, **kwargs) -> None:
    """What was learnt of the merged person follows the survivor where the survivor has none of
    its own; the next refresh learns the survivor anew (the merge touches the survivor's row), and
    after an unmerge learns each side again: the merged person's own duplicates are not kept."""
    for model, (name, unique_with) in PER_PROFILE.items():
        journal.move(model=model, name=name, unique_with=unique_with, keep_dropped=False)


def profiles_erasing(sender, *, workspace_id: int, profile_ids: list[int], **kwargs) -> dict[str, int]:
    recompute = _features_show_their_values(workspace_id, profile_ids)  # read before their rows go
    done = {
        name: model._default_manager.filter(profile_id__in=profile_ids).delete()[0]
        for model, (name, _) in PER_PROFILE.items()
    }
    if recompute:
        job_request(workspace=Workspace.objects.get(pk=workspace_id), kind=InsightJob.Kind.FEATURES)
    done["feature_definitions"] = int(recompute)
    return done


def _features_show_their_values(workspace_id: int, profile_ids: list[int]) -> bool:
    """Whether a column of the features names a value these people had: their region, an attribute
    value, a survey answer (each shared by AGGREGATE_FLOOR people or more when the column was made)."""
    definition = FeatureSet.objects.filter(workspace_id=workspace_id).values_list("definition", flat=True).first()
    shown = {json.dumps(column.get("value")) for column in definition or [] if column.get("value") is not None}
    if not shown:
        return False
    values = typed_values(profile_ids=profile_ids)
    theirs = {json.dumps(region) for region in values.regions}
    theirs.update(json.dumps(item) for items in values.attributes.values() for item in items)
    theirs.update(json.dumps(answer) for _, _, answer in values.answers)
    return bool(shown & theirs)


def access_section(profile) -> dict[str, Any]:
    """What Cible has learnt about the person (GDPR Art. 15: profiling included)."""
    rfm = RfmScore.objects.filter(profile=profile).order_by("-run__version").first()
    return {
        "rfm": None
        if rfm is None
        else {"r": rfm.r, "f": rfm.f, "m": rfm.m, "segment": rfm.segment, "as_of": rfm.run.as_of},
        "personas": list(
            PersonaMember.objects.filter(profile=profile)
            .order_by("-run__version")
            .values("run__version", "persona__name")[:1]
        ),
        "model_scores": [
            {"model": name, "score": score}
            for name, score in Score.objects.filter(profile=profile)
            .order_by("model_id", "-version")
            .values_list("model__name", "score")
        ],
        "lifetime_value": list(
            ClvScore.objects.filter(profile=profile)
            .order_by("-run__version")
            .values("run__as_of", *ClvScore.MEASURES)[:1]
        ),
        "lookalike_bands": list(
            LookalikeMember.objects.filter(profile=profile).values("lookalike__seed__name", "band", "version")
        ),
    }
