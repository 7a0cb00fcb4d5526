from enum import StrEnum

from core.errors import CommonErrorCode


class ReportingErrorCode(StrEnum):
    FUTURE = CommonErrorCode.FUTURE
    INVALID_CHANNEL = "invalid_channel"
    OUT_OF_SCHEDULE = "out_of_schedule"
