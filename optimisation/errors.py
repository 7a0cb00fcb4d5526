from enum import StrEnum

from campaigns.errors import CampaignErrorCode


class OptimisationErrorCode(StrEnum):
    # A reallocation on a closed budget answers as a budget change does.
    FINAL = CampaignErrorCode.FINAL
    TOO_FEW_TARGETS = "too_few_targets"
    # The incremental ROAS reads the campaign's experiment, which needs a control group.
    NO_CONTROL_GROUP = "no_control_group"
    SECRET_REQUIRED = "secret_required"
    # What the action needs: a change for a budget action, an address for a notification.
    CHANGE_REQUIRED = "change_required"
    NOTIFY_TARGET_REQUIRED = "notify_target_required"
