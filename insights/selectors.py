"""What higher apps read of insights: the profiles a fine-mode target reaches."""

from django.db.models import QuerySet

from insights.models import PredictiveModel, Score


def membership_model(*, segment) -> PredictiveModel | None:
    return PredictiveModel.objects.filter(
        workspace_id=segment.workspace_id, kind=PredictiveModel.Kind.MEMBERSHIP, segment=segment
    ).first()


def fine_members(*, segment, min_probability) -> QuerySet | None:
    """Profile ids whose membership probability of `segment` is at least `min_probability`, by the
    current scores of its membership model; None while the segment has no scored model."""
    model = membership_model(segment=segment)
    if model is None or model.version == 0:
        return None
    return Score.objects.filter(model_id=model.pk, version=model.version, score__gte=float(min_probability)).values(
        "profile_id"
    )
