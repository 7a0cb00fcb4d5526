from enum import StrEnum


class ProgrammaticErrorCode(StrEnum):
    AREA = "area"  # an area that is not countries, regions, cities and circles
    CATEGORIES = "categories"  # a creative's IAB content categories
    CAP_INCOMPLETE = "cap_incomplete"  # a frequency cap names both a number and a window
    CREATIVE_SIZE = "creative_size"
    DAYPARTS = "dayparts"
    INVENTORY = "inventory"
    MIN_ABOVE_MAX = "min_above_max"
    NOT_DISPLAY = "not_display"  # a line item is for a display target
    WEEKDAYS = "weekdays"
