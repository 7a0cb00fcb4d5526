"""API conventions shared by every app: errors, pagination, parsing limits."""

from datetime import UTC, datetime, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.forms.fields import InvalidJSONInput
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters.fields import IsoDateTimeField
from django_filters.filters import IsoDateTimeFilter
from rest_framework import exceptions, status
from rest_framework.fields import get_error_detail
from rest_framework.metadata import SimpleMetadata
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import CommonErrorCode, Conflict
from core.parsers import TOO_DEEP_MESSAGE
from core.payloads import PayloadProblem, payload_check
from core.time import duration_iso

MAX_PAGE_SIZE = 500


class UTCIsoDateTimeField(IsoDateTimeField):
    """ISO 8601 in any offset, handed to the database in UTC (PostgreSQL refuses offsets >= 16 h)."""

    def to_python(self, value):
        parsed = super().to_python(value)
        return parsed.astimezone(UTC) if parsed is not None and timezone.is_aware(parsed) else parsed


class DateTimeFilter(IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField


def parse_datetime_param(value: str) -> datetime | None:
    """A query-string date-time as an aware UTC datetime, or None when it is not one."""
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    if parsed is None:
        return None
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed.astimezone(UTC)


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


class TimeCursorPagination(CursorPagination):
    """For tables of millions of rows (events): no COUNT(*), stable under inserts."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = ("-occurred_at", "-id")


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = CommonErrorCode.REQUEST_TOO_LARGE


def read_upload(upload) -> bytes:
    """An uploaded file's bytes; a file over the import limit is refused with a 413 before it is read."""
    if upload.size > settings.IMPORT_MAX_BYTES:
        raise RequestTooLarge(f"The file is over {settings.IMPORT_MAX_BYTES} bytes.")
    return upload.read()


def error_details(detail: Any) -> Any:
    """DRF error details as Cible answers them: each message a `{message, code}` object."""
    if isinstance(detail, list):
        return [error_details(item) for item in detail]
    if isinstance(detail, dict):
        return {key: error_details(value) for key, value in detail.items()}
    return {"message": str(detail), "code": getattr(detail, "code", CommonErrorCode.INVALID)}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error is JSON: `{field: [{message, code}]}` for validation, else `{detail, code}`."""
    if isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge(f"The request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")
    elif isinstance(exc, DjangoValidationError):
        status_code = 409 if isinstance(exc, Conflict) else 400
        exc = exceptions.ValidationError(detail=django_error_detail(exc))
        exc.status_code = status_code
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, list):
            detail = {"non_field_errors": detail}
        response.data = error_details(detail)
    elif isinstance(exc, exceptions.APIException):
        code = getattr(exc.detail, "code", exc.default_code)
        response.data = {"detail": str(exc.detail), "code": code}
    return response


def django_error_detail(exc: DjangoValidationError) -> Any:
    if hasattr(exc, "error_dict"):
        return {
            ("non_field_errors" if key == "__all__" else key): get_error_detail(DjangoValidationError(value))
            for key, value in exc.error_dict.items()
        }
    return {"non_field_errors": get_error_detail(exc)}


class ActionsOnlyMetadata(SimpleMetadata):
    """OPTIONS for views whose writes are actions on no single object (reports, settings):
    the name, description and formats, without describing an object they do not have."""

    def determine_actions(self, request, view):
        return {}


class SafeJSONFormField(forms.JSONField):
    """The admin's JSON fields, within the same limits as the API's bodies."""

    def to_python(self, value):
        try:
            data = super().to_python(value)
        except RecursionError:
            raise DjangoValidationError(TOO_DEEP_MESSAGE, code=CommonErrorCode.TOO_DEEP) from None
        try:
            payload_check(data)
        except PayloadProblem as problem:
            where = f" (at {problem.path})" if problem.path != "non_field_errors" else ""
            raise DjangoValidationError(problem.message + where, code=problem.code) from None
        return data

    def bound_data(self, data, initial):
        try:
            return super().bound_data(data, initial)
        except RecursionError:  # shown again as typed, with the error above it
            return InvalidJSONInput(data)


class IsoDurationFormField(forms.DurationField):
    """The admin's durations in ISO 8601, as in the API: shown as PT1H or P7D, typed either way."""

    default_error_messages = {"invalid": "Enter an ISO 8601 duration such as PT30M, PT1H or P7D."}

    def prepare_value(self, value):
        if isinstance(value, timedelta):
            return duration_iso(value)
        return value
