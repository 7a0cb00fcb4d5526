from enum import StrEnum


class InsightErrorCode(StrEnum):
    NO_AUDIENCE = "no_audience"
    NO_MODEL_FOR_SEGMENT = "no_model_for_segment"
    NOT_TRAINED = "not_trained"
    UNREACHABLE = "unreachable"
    OVERLAPPING = "overlapping"
