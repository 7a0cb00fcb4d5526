"""Error codes every app shares: the generic ones Django and DRF also answer with.

An app's own `<app>/errors.py` holds only the codes of its domain. API clients read
these values, so a value never changes once released.
"""

import json
from enum import StrEnum

from django.core.exceptions import ValidationError


class CommonErrorCode(StrEnum):
    BLANK = "blank"
    CONFLICT = "conflict"
    DUPLICATE_KEY = "duplicate_key"
    DOES_NOT_EXIST = "does_not_exist"
    EMPTY = "empty"
    FUTURE = "future"
    ERRORS_TRUNCATED = "errors_truncated"
    INVALID = "invalid"
    INVALID_CHOICE = "invalid_choice"
    MAX_LENGTH = "max_length"
    MIN_VALUE = "min_value"
    NON_FINITE = "non_finite"
    NULL_CHARACTER = "null_characters_not_allowed"
    NOT_FOUND = "not_found"
    NOT_UNIQUE = "not_unique"  # a list whose items must each appear once
    OUT_OF_RANGE = "out_of_range"
    PAGE_AND_CURSOR = "page_and_cursor"  # a list paged by number and by cursor at once
    CURSOR_ORDERING = "cursor_ordering"  # a keyset cursor ordered by another field than the id
    PROTECTED = "protected"
    READ_ONLY = "read_only"
    REQUEST_TOO_LARGE = "request_too_large"
    REQUIRED = "required"
    SERVER_ERROR = "server_error"
    TOO_DEEP = "too_deep"
    UNAVAILABLE = "unavailable"
    UNIQUE = "unique"
    UNKNOWN_FIELD = "unknown_field"


class Conflict(ValidationError):
    """A request refused because of the state of other rows (a segment still used by a campaign):
    the API answers 409 with the usual `{field: [{message, code}]}` body."""


def json_literal(value) -> str:
    """A value as the client wrote it, in JSON (`true`, `"text"`, `null`), for error messages."""
    return json.dumps(value, ensure_ascii=False, default=str)
