from enum import StrEnum


class CustomerErrorCode(StrEnum):
    REQUIRED = "required"
    BLANK = "blank"
    INVALID = "invalid"
    INVALID_CHOICE = "invalid_choice"
    MAX_LENGTH = "max_length"
    UNKNOWN_FIELD = "unknown_field"
    UNKNOWN_ATTRIBUTE = "unknown_attribute"
    INVALID_EMAIL = "invalid_email"
    INVALID_PHONE = "invalid_phone"
    INVALID_DATE = "invalid_date"
    INVALID_DATETIME = "invalid_datetime"
    OUT_OF_RANGE = "out_of_range"
    COORDINATES_PAIR = "coordinates_pair"
    TOO_MANY_ITEMS = "too_many_items"
    SAME_PROFILE = "same_profile"
    NOT_A_LIST = "not_a_list"
    NULL_CHARACTER = "null_characters_not_allowed"
    ENCODING = "encoding"
