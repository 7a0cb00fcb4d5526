from enum import StrEnum


class AccountErrorCode(StrEnum):
    INVALID_TIME_ZONE = "invalid_time_zone"
    LOCKED = "locked"
