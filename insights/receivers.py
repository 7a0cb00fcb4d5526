"""How insights takes part in what lower apps do: recomputed audiences, merges, erasure and
access requests. Connected in InsightsConfig.ready."""

from typing import Any

from insights.models import (
    InsightJob,
    Lookalike,
    LookalikeMember,
    PersonaMember,
    PredictiveModel,
    ProfileFeatures,
    RfmScore,
    Score,
)
from segments.models import JobStatus

PER_PROFILE = (ProfileFeatures, RfmScore, PersonaMember, Score, LookalikeMember)


def audience_computed(sender, *, segment_id: int, workspace_id: int, **kwargs) -> None:
    """A segment's new audience: retrain its membership model (scores refresh with the segment)
    and re-rank the lookalikes it seeds."""
    from accounts.models import Workspace
    from insights.jobs import job_request

    workspace = Workspace.objects.get(pk=workspace_id)
    for model_id in PredictiveModel.objects.filter(
        segment_id=segment_id, kind=PredictiveModel.Kind.MEMBERSHIP, version__gt=0
    ).values_list("pk", flat=True):
        if not Lookalike.objects.filter(seed_id=segment_id, model_id=model_id).exists():
            job_request(workspace=workspace, kind=InsightJob.Kind.MODEL, subject_id=model_id)
    for lookalike_id in (
        Lookalike.objects.filter(seed_id=segment_id).exclude(status=JobStatus.QUEUED).values_list("pk", flat=True)
    ):
        job_request(workspace=workspace, kind=InsightJob.Kind.LOOKALIKE, subject_id=lookalike_id)


def profile_merging(sender, *, survivor, merged, **kwargs) -> dict[str, int]:
    """What was learnt of the merged profile goes; the next refresh learns the survivor anew."""
    return {
        f"insights_{model._meta.model_name}": model.objects.filter(profile_id=merged.pk).delete()[0]
        for model in PER_PROFILE
    }


def profiles_erasing(sender, *, profile_ids: list[int], **kwargs) -> dict[str, int]:
    return {
        f"insights_{model._meta.model_name}": model.objects.filter(profile_id__in=profile_ids).delete()[0]
        for model in PER_PROFILE
    }


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
        "lookalike_bands": list(
            LookalikeMember.objects.filter(profile=profile).values("lookalike__seed__name", "band", "version")
        ),
    }
