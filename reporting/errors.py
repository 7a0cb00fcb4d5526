from enum import StrEnum


class ReportingErrorCode(StrEnum):
    FUTURE = "future"
    INVALID_CHANNEL = "invalid_channel"
    OUT_OF_SCHEDULE = "out_of_schedule"
