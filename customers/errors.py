from enum import StrEnum

from core.errors import CommonErrorCode


class CustomerErrorCode(StrEnum):
    # The generic codes stay here under their old names for the payload validator
    # (customers.ingestion); their values come from CommonErrorCode, which new code names.
    REQUIRED = CommonErrorCode.REQUIRED
    BLANK = CommonErrorCode.BLANK
    INVALID = CommonErrorCode.INVALID
    INVALID_CHOICE = CommonErrorCode.INVALID_CHOICE
    MAX_LENGTH = CommonErrorCode.MAX_LENGTH
    UNKNOWN_FIELD = CommonErrorCode.UNKNOWN_FIELD
    UNKNOWN_ATTRIBUTE = "unknown_attribute"
    UNKNOWN_PROFILE = "unknown_profile"
    INVALID_EMAIL = "invalid_email"
    INVALID_PHONE = "invalid_phone"
    INVALID_DATE = "invalid_date"
    INVALID_DATETIME = "invalid_datetime"
    OUT_OF_RANGE = CommonErrorCode.OUT_OF_RANGE
    COORDINATES_PAIR = "coordinates_pair"
    TOO_MANY_ITEMS = "too_many_items"
    SAME_PROFILE = "same_profile"
    NOT_A_LIST = "not_a_list"
    NULL_CHARACTER = CommonErrorCode.NULL_CHARACTER
    ENCODING = "encoding"
    IMMUTABLE = "immutable"
    DUPLICATE_OPTION = "duplicate_option"
    ALREADY_UNMERGED = "already_unmerged"
    NOT_UNMERGEABLE = "not_unmergeable"
    IDENTITY_REQUIRED = "identity_required"  # an event or order with neither external id nor identity  # a value listed twice among declared options
