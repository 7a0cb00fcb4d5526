from enum import StrEnum


class CampaignErrorCode(StrEnum):
    BELOW_SPENT = "below_spent"
    BUDGET_EXCEEDED = "budget_exceeded"
    CURRENCY_MISMATCH = "currency_mismatch"
    DAILY_ABOVE_TOTAL = "daily_above_total"
    DAILY_BUDGET_EXCEEDED = "daily_budget_exceeded"
    EMPTY_AUDIENCE = "empty_audience"
    END_BEFORE_START = "end_before_start"
    ENDED = "ended"
    FINAL = "final"
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    ILLEGAL_TRANSITION = "illegal_transition"
    NO_AUDIENCE = "no_audience"
    NO_SCORES = "no_scores"
    NOT_ACTIVE = "not_active"
    NOT_EDITABLE = "not_editable"
    OVER_100 = "over_100"
    RATE_OUT_OF_RANGE = "rate_out_of_range"  # a sample size's baseline plus uplift outside (0, 1)
    SPLIT_TRIGGERED = "split_triggered"  # an A/B weight on a target without a segment
    TOO_SHORT = "too_short"
    URL_REQUIRED = "url_required"  # a webhook connector names its receiver
