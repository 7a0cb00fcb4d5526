from enum import StrEnum

from segments.errors import SegmentErrorCode


class AudienceErrorCode(StrEnum):
    # The segment has no computed audience yet: the same answer whichever app asks.
    NO_AUDIENCE = SegmentErrorCode.NO_AUDIENCE
    FORBIDDEN = "forbidden"
