from enum import StrEnum


class SegmentErrorCode(StrEnum):
    INVALID_RULE = "invalid_rule"
    UNKNOWN_SEGMENT = "unknown_segment"
    CYCLE = "cycle"
    STATIC_HAS_NO_RULES = "static_has_no_rules"
    RULES_REQUIRED = "rules_required"
    NOT_STATIC = "not_static"
    NO_AUDIENCE = "no_audience"
    TOO_SLOW = "too_slow"
