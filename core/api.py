"""API conventions shared by every app: errors, pagination, parsing limits."""

import functools
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.apps import apps as django_apps
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError, connections, models
from django.forms.fields import InvalidJSONInput
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext
from django_filters.fields import IsoDateTimeField
from django_filters.filters import IsoDateTimeFilter
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import exceptions, status
from rest_framework.exceptions import ErrorDetail
from rest_framework.fields import get_error_detail
from rest_framework.metadata import SimpleMetadata
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from core.errors import CommonErrorCode, Conflict
from core.outages import RETRY_AFTER_S, dependency_of, outage_logged, outage_message
from core.parsers import TOO_DEEP_MESSAGE
from core.payloads import PayloadProblem, StrictJSONDecoder, null_character_path, payload_check
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


class StrictIntegerField(forms.IntegerField):
    """Digits, with a minus sign at most: Django's own also takes `2.0` and ` 2 `, which the schema's
    `integer` does not."""

    def to_python(self, value):
        if value not in self.empty_values and not re.fullmatch(r"-?[0-9]+", str(value)):
            raise forms.ValidationError(self.error_messages["invalid"], code=CommonErrorCode.INVALID)
        return super().to_python(value)


class IntegerFilter(django_filters.NumberFilter):
    """A whole number within 64 bits: `?n=0.5`, `?n=2.0` or `?n=1e30` is a 400, not a silent match or a 500."""

    field_class = StrictIntegerField

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
            raise forms.ValidationError(gettext("Expected true or false."), code=CommonErrorCode.INVALID) from None


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


# A cursor page's count is exact under this many rows (the planner's estimate says so): cheap enough.
EXACT_COUNT_BELOW = 20_000


class KeysetPagination(PageSize, CursorPagination):
    """Pages by keyset (`WHERE id > last ORDER BY id LIMIT n`): as fast on the millionth row as on the
    first, stable under inserts. With a count: exact when asked (`count=exact`), when the list fits
    in one page or when the planner expects fewer than EXACT_COUNT_BELOW rows, an estimate otherwise
    (`count_exact` says which)."""

    ordering = ("id",)
    count: int
    count_exact: bool

    def get_ordering(self, request, queryset, view):
        """By id, ascending or (`ordering=-id`) descending: a key no two rows share, so that no row is
        skipped or repeated. DRF's cursor keeps only the first field of an ordering; ties on a name
        would cost rows."""
        asked = request.query_params.get("ordering", "")
        if asked in ("", "id", "pk"):
            return ("id",)
        if asked in ("-id", "-pk"):
            return ("-id",)
        refusal = ErrorDetail(
            "With a cursor, pages are ordered by id or -id only.", code=CommonErrorCode.CURSOR_ORDERING
        )
        raise exceptions.ValidationError({"ordering": [refusal]})

    def decode_cursor(self, request):
        if request.query_params.get(self.cursor_query_param) == "":
            return None  # `?cursor=`: the first page
        return super().decode_cursor(request)

    def paginate_queryset(self, queryset, request, view=None):
        wanted = count_asked(request)
        page = super().paginate_queryset(queryset, request, view)
        if not self.has_next and not self.has_previous:
            self.count, self.count_exact = len(page), True
        elif wanted == "exact":
            self.count, self.count_exact = queryset.count(), True
        else:
            estimate = planner_rows(queryset)
            if estimate is None or (estimate < EXACT_COUNT_BELOW and wanted != "estimate"):
                self.count, self.count_exact = queryset.count(), True
            else:
                self.count, self.count_exact = estimate, False
        return page

    def get_paginated_response(self, data):
        return Response(
            {
                "count": self.count,
                "count_exact": self.count_exact,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )


def count_asked(request) -> str:
    """The `count` parameter: "" (by default), "exact" or "estimate"; anything else is a 400."""
    wanted = request.query_params.get("count", "")
    if wanted not in ("", "exact", "estimate"):
        raise exceptions.ValidationError({"count": ["Either exact or estimate."]})
    return wanted


def planner_rows(queryset) -> int | None:
    """PostgreSQL's estimate of the rows a query returns (None on another database)."""
    if connections[queryset.db].vendor != "postgresql":
        return None
    plan = json.loads(queryset.order_by().explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


class PagesOrKeyset(Pagination):
    """Page numbers (`page`, with an exact `count`), or with `cursor` a keyset cursor
    (KeysetPagination: `?cursor=` for the first page, then each answer's `next`)."""

    _keyset: KeysetPagination | None = None

    def paginate_queryset(self, queryset, request, view=None):
        self._keyset = None
        count_asked(request)  # page numbers always count exactly; the value is still checked
        if KeysetPagination.cursor_query_param in request.query_params:
            if "page" in request.query_params:
                refusal = ErrorDetail("Give a page or a cursor, not both.", code=CommonErrorCode.PAGE_AND_CURSOR)
                raise exceptions.ValidationError({"cursor": [refusal]})
            self._keyset = KeysetPagination()
            return self._keyset.paginate_queryset(queryset, request, view)
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data):
        if self._keyset is not None:
            return self._keyset.get_paginated_response(data)
        return super().get_paginated_response(data)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        parameters += [
            {
                "name": KeysetPagination.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Keyset pages instead of numbered ones: empty for the first page, then the "
                "cursor of the previous answer's `next` link. Not with `page`.",
                "schema": {"type": "string"},
            },
            {
                "name": "count",
                "required": False,
                "in": "query",
                "description": "With `cursor`: `exact` counts every row; by default a long list's count is "
                "the planner's estimate (`count_exact` false); `estimate` asks for the estimate always. Page numbers "
                "always count exactly.",
                "schema": {"type": "string", "enum": ["exact", "estimate"]},
            },
        ]
        return parameters

    def get_paginated_response_schema(self, schema):
        answer = super().get_paginated_response_schema(schema)
        answer["properties"] = {
            "count": answer["properties"]["count"],
            "count_exact": {
                "type": "boolean",
                "description": "With `cursor` only: false when `count` is an estimate.",
            },
            **{name: value for name, value in answer["properties"].items() if name != "count"},
        }
        return answer


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


MAX_ERRORS_SHOWN = 100


class _Budget:
    def __init__(self, left: int) -> None:
        self.left, self.skipped = left, 0


def error_details(detail: Any) -> Any:
    """DRF error details as Cible answers them: each message a `{message, code}` object.

    At most MAX_ERRORS_SHOWN messages, the first ones in the order of the request: past them, an
    `errors_truncated` entry says how many more there were, so that a request with a million bad
    values gets an answer of a few kilobytes, not of 80 MB.
    """
    budget = _Budget(MAX_ERRORS_SHOWN)
    data = _details(detail, budget)
    if budget.skipped and isinstance(data, dict):
        message = f"{budget.skipped} more errors are not shown (the first {MAX_ERRORS_SHOWN} are)."
        data["errors_truncated"] = [{"message": message, "code": CommonErrorCode.ERRORS_TRUNCATED}]
    return data


def _details(detail: Any, budget: _Budget) -> Any:
    if isinstance(detail, list):
        items = [_details(item, budget) for item in detail]
        return [item for item in items if item is not _SKIPPED]
    if isinstance(detail, dict):
        pairs = ((key, _details(value, budget)) for key, value in detail.items())
        return {key: value for key, value in pairs if value is not _SKIPPED and value not in ([], {})}
    if budget.left <= 0:
        budget.skipped += 1
        return _SKIPPED
    budget.left -= 1
    return {"message": str(detail), "code": getattr(detail, "code", CommonErrorCode.INVALID)}


_SKIPPED = object()


@functools.cache
def _unique_keys() -> dict[Any, tuple[type[models.Model], list[str]]]:
    """Every unique constraint of the installed models, by its name and by (table, columns)."""
    keys: dict[Any, tuple[type[models.Model], list[str]]] = {}
    for model in django_apps.get_models():
        for constraint in model._meta.constraints:
            if isinstance(constraint, models.UniqueConstraint) and constraint.fields:
                fields = list(constraint.fields)
                columns = tuple(getattr(model._meta.get_field(name), "column", name) for name in fields)
                keys[constraint.name] = keys[(model._meta.db_table, columns)] = (model, fields)
    return keys


_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")


def integrity_conflict(exc: IntegrityError) -> exceptions.ValidationError:
    """A write the database refused, as a 409 the client can read: the unique key it collided on
    (`{"channel": [{"code": "unique"}]}`), or a conflict with a row changed meanwhile (a foreign
    key to a row deleted by a concurrent request). Checks before a write cannot see a concurrent
    request's row: the constraint decides, and this says what it decided."""
    cause = exc.__cause__
    diag = getattr(cause, "diag", None)
    key = None
    if diag is not None and getattr(cause, "sqlstate", None) == "23505":  # unique_violation
        key = _unique_keys().get(diag.constraint_name)
    else:
        match = _SQLITE_UNIQUE.search(str(exc))
        if match:
            pairs = [part.strip().split(".", 1) for part in match.group(1).split(",")]
            if all(len(pair) == 2 for pair in pairs):
                key = _unique_keys().get((pairs[0][0], tuple(column for _, column in pairs)))
    if key is None:
        error = exceptions.ValidationError(
            {
                "non_field_errors": [
                    ErrorDetail(
                        "The request conflicts with a change made at the same moment; read the data again.",
                        code=CommonErrorCode.CONFLICT,
                    )
                ]
            }
        )
    else:
        model, fields = key
        named = [name for name in fields if name != "workspace"] or fields
        what = model._meta.verbose_name
        message = f"A {what} with this {' and '.join(name.replace('_', ' ') for name in named)} exists already."
        error = exceptions.ValidationError({named[-1]: [ErrorDetail(message, code=CommonErrorCode.UNIQUE)]})
    error.status_code = status.HTTP_409_CONFLICT
    return error


def unavailable_response(dependency: str, exc: BaseException) -> Response:
    """An outage of a dependency (core.outages): 503 with Retry-After, logged once per interval."""
    outage_logged(dependency, exc)
    set_rollback()
    response = Response(
        {"detail": outage_message(dependency), "code": CommonErrorCode.UNAVAILABLE},
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
    )
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error is JSON: `{field: [{message, code}]}` for validation, else `{detail, code}`; a
    dependency down is a 503 (core.outages)."""
    dependency = dependency_of(exc)
    if dependency is not None and not isinstance(exc, IntegrityError):
        return unavailable_response(dependency, exc)
    if isinstance(exc, IntegrityError):
        exc = integrity_conflict(exc)
    if isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge(f"The request body is over {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.")
    elif isinstance(exc, DjangoValidationError):
        exc = _unique_refusal(exc) or exc
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


_UNIQUE_CODES = {"unique", "unique_together"}


def _unique_refusal(exc: DjangoValidationError) -> DjangoValidationError | None:
    """Model validation's refusal of a duplicate (`full_clean`: "Segment with this Workspace and
    Name already exists.") as the 409 a concurrent duplicate gets from the constraint: the field
    named, code `unique`. None when the errors are not all about unique keys."""
    errors = [error for errors in exc.error_dict.values() for error in errors] if hasattr(exc, "error_dict") else []
    if not errors or any(error.code not in _UNIQUE_CODES for error in errors):
        return None
    refusals: dict[str, DjangoValidationError] = {}
    for key, field_errors in exc.error_dict.items():
        for error in field_errors:
            params = error.params or {}
            check = [name for name in params.get("unique_check", (key,)) if name != "workspace"] or [key]
            model = str(params.get("model_name") or "row").lower()
            message = f"A {model} with this {' and '.join(name.replace('_', ' ') for name in check)} exists already."
            refusals[check[-1]] = DjangoValidationError(message, code=CommonErrorCode.UNIQUE)
    return Conflict(refusals)


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
    """The admin's JSON fields, within the same limits as the API's bodies, without NUL characters."""

    def __init__(self, **kwargs):
        kwargs.setdefault("decoder", StrictJSONDecoder)
        super().__init__(**kwargs)

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
        where = null_character_path(data)
        if where is not None:
            at = f" (at {where})" if where != "non_field_errors" else ""
            raise DjangoValidationError(f"NUL characters are not allowed{at}.", code=CommonErrorCode.NULL_CHARACTER)
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
