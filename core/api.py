"""API conventions shared by every app: errors, pagination, parsing limits."""

from datetime import UTC, datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.db import models
from django.forms.fields import InvalidJSONInput
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters.fields import IsoDateTimeField
from django_filters.filters import IsoDateTimeFilter
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from django_filters.rest_framework import DjangoFilterBackend
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


MAX_ID = 2**63 - 1


class IntegerFilter(django_filters.NumberFilter):
    """A whole number within 64 bits: `?n=0.5` or `?n=1e30` is a 400, not a silent match or a 500."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", -MAX_ID - 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class IdFilter(IntegerFilter):
    """A row's id: an integer from 1 (the schema says so), matching no row when no row has it.

    django-filter's default for a foreign key is a ModelChoiceFilter, which answers 400 "Select a
    valid choice" for an id that does not exist, and so tells a caller which ids exist in other
    workspaces; an id filter only ever narrows the caller's own rows.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        super().__init__(*args, **kwargs)


class StrictBooleanField(forms.Field):
    """`true` or `false` (also `1`, `0`, any case); anything else is an error, not "no filter"."""

    VALUES = {"true": True, "1": True, "false": False, "0": False}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return self.VALUES[str(value).strip().lower()]
        except KeyError:
            raise forms.ValidationError("Expected true or false.", code=CommonErrorCode.INVALID) from None


class BooleanFilter(django_filters.BooleanFilter):
    """django-filter's BooleanFilter reads `?active=maybe` as no filter at all; this one answers 400."""

    field_class = StrictBooleanField


class FilterSet(django_filters.FilterSet):
    """Cible's FilterSet: relations are filtered by id (IdFilter), integer columns by IntegerFilter,
    booleans strictly (BooleanFilter)."""

    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        **{
            field: {"filter_class": IntegerFilter}
            for field in FILTER_FOR_DBFIELD_DEFAULTS
            if issubclass(field, models.IntegerField | models.AutoField)
        },
        models.BooleanField: {"filter_class": BooleanFilter},
        models.ForeignKey: {"filter_class": IdFilter},
        models.OneToOneField: {"filter_class": IdFilter},
        models.ManyToManyField: {"filter_class": IdFilter},
    }


class FilterBackend(DjangoFilterBackend):
    """django-filter, skipped when the query string names none of the view's filters.

    A FilterSet and its form are built and validated on every list request, filtered or not; with
    no parameter of theirs in the query string every filter would be skipped anyway (empty values
    are), so the list is returned as it is. A parameter counts as the filter's when it is the
    filter's name or starts with it and `_` (the `_min`, `_after`... of range widgets).
    The FilterSets made from a view's `filterset_fields` are Cible's (core.api.FilterSet).
    """

    filterset_base = FilterSet

    def filter_queryset(self, request, queryset, view):
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is None:
            return queryset
        names = filterset_class.base_filters
        if not any(param in names or param.startswith(tuple(f"{n}_" for n in names)) for param in request.query_params):
            return queryset
        return super().filter_queryset(request, queryset, view)


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


class FirstPagePaginator(Paginator):
    """Counts with the first page's rows when they are all there is: no COUNT(*) for a short list.

    The first page is read with one row more than it shows; only when that row exists (more
    pages follow) is the total counted, as Django's paginator always does.
    """

    def page(self, number):
        if str(number) != "1" or "count" in self.__dict__ or self.orphans:
            return super().page(number)
        rows = list(self.object_list[: self.per_page + 1])
        if len(rows) <= self.per_page:
            self.__dict__["count"] = len(rows)  # the cached_property, known without a query
        return self._get_page(rows[: self.per_page], 1, self)


class PageSize:
    """`page_size` from 1 to MAX_PAGE_SIZE, as the schema says; anything else is a 400, not ignored.

    DRF falls back to the default size for `page_size=abc` and cuts `page_size=9000` down to the
    maximum: a client that asked for something else would not know it got the default.
    """

    page_size: int | None = 50
    page_size_query_param: str | None = "page_size"
    max_page_size: int | None = MAX_PAGE_SIZE

    def get_page_size(self, request):
        raw = request.query_params.get("page_size")
        if not raw:  # absent or empty, as any optional query parameter
            return self.page_size
        size = int(raw) if raw.isascii() and raw.isdigit() else 0
        if not 1 <= size <= MAX_PAGE_SIZE:
            message = f"A whole number from 1 to {MAX_PAGE_SIZE}."
            raise exceptions.ValidationError({"page_size": [message]})
        return size

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == "page_size":
                parameter["schema"].update(minimum=1, maximum=MAX_PAGE_SIZE, default=self.page_size)
        return parameters


class Pagination(PageSize, PageNumberPagination):
    django_paginator_class = FirstPagePaginator


class TimeCursorPagination(PageSize, CursorPagination):
    """For tables of millions of rows (events): no COUNT(*), stable under inserts."""

    ordering = ("-occurred_at", "-id")

    def decode_cursor(self, request):
        if request.query_params.get(self.cursor_query_param) == "":
            return None  # `?cursor=`: the first page, as any empty optional query parameter
        return super().decode_cursor(request)


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
