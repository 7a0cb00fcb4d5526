"""Input serializers that say what they did not understand."""

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

from django.core.validators import RegexValidator
from django.db import models
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.fields import empty

from core.errors import CommonErrorCode
from core.payloads import null_character_path
from core.time import DATE_RANGE_TEXT, OutOfDateRange, duration_iso, in_date_range, moment_parse

# The longest text a free-text field takes when its model does not say (a description, a note): a
# page of text is some 3,000 characters. Fields that hold more (a message body) state their own.
TEXT_MAX_LENGTH = 10_000


class TextOnly:
    """A text field that refuses a JSON number or boolean: `"description": 0` is a client's mistake,
    not the text "0" (DRF turns numbers into strings). Form and query values are strings anyway.

    The maximum length applies to the text as sent: DRF trims spaces first, so 300 characters
    of which 50 are spaces passed a limit of 254, which the schema says they break."""

    def run_validation(self, data=empty):
        max_length = getattr(self, "max_length", None)
        if isinstance(data, str) and max_length is not None and len(data) > max_length:
            self.fail("max_length", max_length=max_length)
        return super().run_validation(data)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class CharField(TextOnly, serializers.CharField):
    """A text, at most `max_length` characters: TEXT_MAX_LENGTH unless the field says otherwise (the
    schema states it), so that no text field stores megabytes a client sent by mistake or malice."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", TEXT_MAX_LENGTH)
        super().__init__(**kwargs)


class EmailField(TextOnly, serializers.EmailField):
    pass


class SlugField(TextOnly, serializers.SlugField):
    pass


class RegexField(TextOnly, serializers.RegexField):
    pass


class IPAddressField(TextOnly, serializers.IPAddressField):
    pass


class NotBoolean:
    """A number field that refuses true and false: DRF reads them as 1 and 0 (`"longitude": false`
    would be stored as 0.0)."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class IntegerField(NotBoolean, serializers.IntegerField):
    pass


class FloatField(NotBoolean, serializers.FloatField):
    pass


class DecimalField(NotBoolean, serializers.DecimalField):
    pass


class BooleanField(serializers.BooleanField):
    """`true` or `false`: a JSON 0 or 1 is refused, not read as a boolean. A string (`"true"`, `"0"`)
    is read as DRF does, since that is how a form or query string writes one."""

    def to_internal_value(self, data):
        if not isinstance(data, bool | str):
            self.fail("invalid")
        return super().to_internal_value(data)


class JSONField(serializers.JSONField):
    """A JSON value the database can store: a NUL character anywhere in it (a text or a key) is
    refused naming where it is, as in any text field, instead of PostgreSQL's error on jsonb."""

    default_error_messages = {
        **serializers.JSONField.default_error_messages,
        "null_character": "NUL characters are not allowed (at {where}).",
    }

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        where = null_character_path(value)
        if where is not None:
            where = self.field_name if where == "non_field_errors" else f"{self.field_name}.{where}".replace(".[", "[")
            raise serializers.ValidationError(
                self.error_messages["null_character"].format(where=where), code=CommonErrorCode.NULL_CHARACTER
            )
        return value


def _out_of_range() -> serializers.ValidationError:
    return serializers.ValidationError(
        gettext("Give a date %(date_range_text)s.") % {"date_range_text": DATE_RANGE_TEXT},
        code=CommonErrorCode.OUT_OF_RANGE,
    )


SCALAR_SCHEMA = {
    "anyOf": [
        {"type": "string", "maxLength": 1_000},
        {"type": "number", "minimum": -(2**63), "maximum": 2**63 - 1},
        {"type": "boolean"},
    ]
}


@extend_schema_field({"type": "object", "additionalProperties": SCALAR_SCHEMA, "maxProperties": 100})
class PropertiesField(JSONField):
    """An object of name: value pairs, each a text, a number or true/false (event properties a
    trigger matches, a rectification's changes)."""


@extend_schema_field({"type": "object", "additionalProperties": {"$ref": "#/components/schemas/JsonValue"}})
class JSONObjectField(JSONField):
    """A JSON object (a profile's attributes, by key)."""


class DateField(serializers.DateField):
    """A date between EARLIEST_YEAR and LATEST_YEAR (core.time), the range every date of Cible shares."""

    def to_internal_value(self, value):
        if isinstance(value, str):
            try:
                day = parse_date(value.strip())
            except ValueError:
                day = None
            if day is not None and not in_date_range(day):
                raise _out_of_range()
        parsed = super().to_internal_value(value)
        if isinstance(parsed, date) and not in_date_range(parsed):
            raise _out_of_range()
        return parsed


class ListField(serializers.ListField):
    """A list of at most `max_length` items, counted before any item is looked at: a million bad
    values are one error, not a million (DRF validates every item, then the length)."""

    def to_internal_value(self, data):
        if self.max_length is not None and isinstance(data, list) and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class UniqueListField(ListField):
    """A list whose items each appear once (the schema says uniqueItems): a repeated item is refused."""

    def to_internal_value(self, data):
        items = super().to_internal_value(data)
        seen = set()
        for item in items:
            key = repr(item)
            if key in seen:
                raise serializers.ValidationError(
                    gettext("%(value)s appears more than once; each item once.") % {"value": repr(item)},
                    code=CommonErrorCode.NOT_UNIQUE,
                )
            seen.add(key)
        return items


# A web address as Cible takes one (a connector's or a rule's webhook): http or https, a host name
# of up to five labels (each at most 47 characters, so that it stays within the 253 of DNS), localhost
# or an IPv4 address, an optional port, and a path of RFC 3986's characters. Stated in the schema.
URL_PATTERN = (
    r"^https?://(([A-Za-z0-9]([A-Za-z0-9-]{0,45}[A-Za-z0-9])?\.){1,4}[A-Za-z]{2,63}|localhost|\d{1,3}(\.\d{1,3}){3})"
    r"(:[0-9]{1,5})?(/([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?$"
)


class URLField(TextOnly, serializers.URLField):
    """A web address of the form URL_PATTERN, which Django's URL validator also accepts."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators.append(
            RegexValidator(URL_PATTERN, "Enter an http(s) address with a host name.", code=CommonErrorCode.INVALID)
        )


# The model fields ModelSerializers map to the strict fields above (core.apps).
STRICT_FIELD_MAPPING = {
    models.CharField: CharField,
    models.TextField: CharField,
    models.EmailField: EmailField,
    models.URLField: URLField,
    models.SlugField: SlugField,
    models.GenericIPAddressField: IPAddressField,
    models.BooleanField: BooleanField,
    models.FloatField: FloatField,
    models.DecimalField: DecimalField,
    models.IntegerField: IntegerField,
    models.BigIntegerField: IntegerField,
    models.SmallIntegerField: IntegerField,
    models.PositiveIntegerField: IntegerField,
    models.PositiveSmallIntegerField: IntegerField,
    models.PositiveBigIntegerField: IntegerField,
    models.JSONField: JSONField,
    models.DateField: DateField,
}


class StrictInput(serializers.Serializer):
    """Refuses top-level fields it does not know (`unknown_field`), instead of ignoring them: a
    misspelt field is an error the client sees, not a silent default. A field the resource shows but
    that only an action changes (`read_only_actions`) is refused with `read_only`, naming the action."""

    # field -> how it changes, e.g. {"status": "the activate/, pause/, resume/ and cancel/ actions"}
    read_only_actions: dict[str, str] = {}

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(str(name) for name in set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: [self._refusal(name)] for name in unknown})
        return super().to_internal_value(data)

    def _refusal(self, name: str) -> ErrorDetail:
        how = self.read_only_actions.get(name)
        if how is not None:
            return ErrorDetail(f"Read-only here: it changes through {how}.", code=CommonErrorCode.READ_ONLY)
        return ErrorDetail("Unknown field.", code=CommonErrorCode.UNKNOWN_FIELD)


# ISO 8601 durations as Cible writes them (P7D, PT1H30M, P1DT12H, PT0.5S), or Django's "1 00:00:00".
DURATION_INPUT_PATTERN = (
    r"^(-?P(?!$)(\d{1,9}D)?(T(?=\d)(\d{1,9}H)?(\d{1,9}M)?(\d{1,9}(\.\d{1,6})?S)?)?"
    r"|-?(\d{1,9} )?\d{2}:\d{2}:\d{2}(\.\d{1,6})?)$"
)
_DURATION_INPUT = re.compile(DURATION_INPUT_PATTERN)


class IsoDurationField(serializers.DurationField):
    """Durations in ISO 8601, in and out: `PT1H`, `P7D`, `P1DT12H` (the older `1 00:00:00` is read too)."""

    default_error_messages = {
        **serializers.DurationField.default_error_messages,
        "invalid": "Expected an ISO 8601 duration such as PT30M, PT1H or P7D.",
        "max_value": "At most {max_value}.",
        "min_value": "At least {min_value}.",
    }

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # The bounds' messages in ISO 8601 too ("At least PT5M", not "0:05:00").
        for validator in self.validators:
            limit = getattr(validator, "limit_value", None)
            if isinstance(limit, timedelta):
                key = "max_value" if type(validator).__name__.startswith("Max") else "min_value"
                validator.message = self.error_messages[key].format(**{key: duration_iso(limit)})

    def to_internal_value(self, value):
        if not isinstance(value, str | timedelta):
            # A bare number would be read as seconds: `0` would be "no window", `7` seven seconds.
            self.fail("invalid")
        if isinstance(value, str) and not _DURATION_INPUT.match(value):
            self.fail("invalid")  # only the forms the schema states (DURATION_INPUT_PATTERN)
        return super().to_internal_value(value)

    def to_representation(self, value):
        return duration_iso(value)


class DateTimeField(serializers.DateTimeField):
    """A date-time written as RFC 3339 allows: in the current time zone, or in UTC when that zone's
    offset then had seconds (Paris was +00:09:21 before 1911), which no date-time parser reads.
    Read, it falls between EARLIEST_YEAR and LATEST_YEAR (core.time), checked before any time-zone
    arithmetic: year 1 read in Paris would step outside what Python's datetime can hold."""

    def to_internal_value(self, value):
        moment = value if isinstance(value, datetime) else None
        if isinstance(value, str):
            try:
                moment = parse_datetime(value.strip())
            except ValueError:
                moment = None
        if moment is not None and not in_date_range(moment):
            raise _out_of_range()
        try:
            return super().to_internal_value(value)
        except OverflowError:  # in range, yet shifted past year 1 or 9999 by its offset
            raise _out_of_range() from None

    def to_representation(self, value):
        if isinstance(value, datetime):
            local = self.enforce_timezone(value)
            offset = local.utcoffset()
            if offset is not None and offset.total_seconds() % 60:
                return local.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return super().to_representation(value)


class DayAwareDateTimeField(DateTimeField):
    """A date-time, or a date alone: a day of the current (workspace's) time zone, its first instant,
    or with `end_of_day` its last, so that a campaign ending on "2026-12-31" runs all that day."""

    def __init__(self, *, end_of_day: bool = False, **kwargs):
        self.end_of_day = end_of_day
        super().__init__(**kwargs)

    def to_internal_value(self, value):
        if isinstance(value, str) and len(value.strip()) == 10:
            try:
                moment = moment_parse(value.strip(), time_zone=str(self.default_timezone()), end_of_day=self.end_of_day)
            except OutOfDateRange:
                raise _out_of_range() from None
            if moment is not None:
                return moment
        return super().to_internal_value(value)
