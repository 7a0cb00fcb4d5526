from enum import StrEnum

from core.errors import CommonErrorCode


class PrivacyErrorCode(StrEnum):
    NOT_OPEN = "request_not_open"
    ALREADY_EXTENDED = "already_extended"
    REASON_REQUIRED = "reason_required"
    PROFILE_REQUIRED = "profile_required"
    INVALID_IDENTIFIER = "invalid_identifier"
    WRONG_KIND = "wrong_kind"
    NO_CHANGES = "no_changes"
    NO_PROOF = "proof_required"
    UNKNOWN_PROFILE = CommonErrorCode.DOES_NOT_EXIST
    NOTHING_TO_WITHDRAW = "nothing_to_withdraw"
    ERASED = "profile_erased"
