"""The lean read path of the hot resources: the same bytes as DRF's, at a fraction of the cost.

A DRF ModelSerializer builds its fields again for every response, reads each attribute through a
model instance and encodes with the standard library. The hot reads (a profile, lists of profiles,
campaigns, audience members) instead read their rows as values, turn each value into JSON with the
serializer field that would have done it (built once per process: `Plan`), and encode the whole
answer with orjson. The serializer classes stay what the OpenAPI schema and every other path use.

Where orjson's bytes differ from DRF's (json.dumps with ensure_ascii=False), they are made the same:
floats under 1e-4 are written as Python writes them (`1e-05`, not `0.00001`), U+2028 and U+2029 are
escaped as DRF does, and integers beyond 64 bits are written out rather than refused.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from django.conf import settings
from rest_framework import relations, serializers
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer
from rest_framework.response import Response

_SEPARATORS = {b"\xe2\x80\xa8": b"\\u2028", b"\xe2\x80\xa9": b"\\u2029"}
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


class Encoded:
    """An answer already encoded: the renderer sends its bytes as they are."""

    __slots__ = ("content",)

    def __init__(self, content: bytes) -> None:
        self.content = content


def encode(data: Any) -> bytes:
    content = orjson.dumps(data)
    for raw, escaped in _SEPARATORS.items():
        if raw in content:
            content = content.replace(raw, escaped)
    return content


def json_value(value: Any) -> Any:
    """A value as json.dumps would write it, ready for orjson: floats and big integers made to match."""
    kind = type(value)
    if kind is float:
        if value != 0 and -1e-4 < value < 1e-4:
            return orjson.Fragment(repr(value).encode())
        return value
    if kind is dict:
        return {key: json_value(item) for key, item in value.items()}
    if kind is list:
        return [json_value(item) for item in value]
    if kind is int and not _INT_MIN <= value <= _INT_MAX:
        return orjson.Fragment(str(value).encode())
    return value


def accepts_json(request) -> bool:
    """True when the answer goes out as plain JSON (not the browsable API, not indented) and the lean
    path is on (setting CIBLE_LEAN_READS, on by default: off, every answer is made by DRF)."""
    if not settings.CIBLE_LEAN_READS:
        return False
    renderer = getattr(request, "accepted_renderer", None)
    if not isinstance(renderer, JSONRenderer):
        return False
    return renderer.get_indent(getattr(request, "accepted_media_type", "") or "", {}) is None


def encoded_response(data: Any, **kwargs: Any) -> Response:
    return Response(Encoded(encode(data)), **kwargs)


def encoded_page(view, rows: Iterable[Any], answers: Callable[[list[Any]], list[dict[str, Any]]]) -> Response:
    """A list's page as the view's paginator cuts and frames it, its rows made into answers and encoded."""
    response = view.get_paginated_response(answers(view.paginate_queryset(rows)))
    response.data = Encoded(encode(response.data))
    return response


class JSONRenderer(DRFJSONRenderer):
    """DRF's JSON renderer, which sends an `Encoded` answer's bytes as they are (only plain JSON is
    encoded ahead: `accepts_json`)."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, Encoded):
            return data.content
        return super().render(data, accepted_media_type, renderer_context)


Converter = Callable[[Any], Any]


def _converter(field: serializers.Field) -> Converter:
    if isinstance(field, relations.PrimaryKeyRelatedField):
        return lambda value: value  # the id column itself
    if isinstance(
        field,
        serializers.IntegerField
        | serializers.BooleanField
        | serializers.DateTimeField
        | serializers.DateField
        | serializers.DecimalField,
    ):
        return field.to_representation  # a number, a boolean or a text: nothing for json_value to do
    represent = field.to_representation
    return lambda value: json_value(represent(value))


def _as_is(field: serializers.Field) -> type | None:
    """The type of value the field writes unchanged (a text field's str: DRF's `str(value)`, a choice's
    own value), so that the row skips the call."""
    if isinstance(field, relations.PrimaryKeyRelatedField | serializers.IntegerField):
        return int
    if isinstance(field, serializers.BooleanField):
        return bool
    if type(field).to_representation in (
        serializers.CharField.to_representation,
        serializers.ChoiceField.to_representation,
    ):
        return str
    return None


class Plan:
    """How one serializer's answer is made from a row of values (a dict keyed by column).

    `computed` gives fields made from the whole row (a model property, a nested list); every other
    field is read from its column (its source, or `<source>_id` for a relation) and turned into JSON
    by the serializer's own field. The fields are built once, when the plan is made.
    """

    def __init__(
        self, serializer_class: type[serializers.Serializer], *, computed: Mapping[str, Converter] | None = None
    ):
        computed = dict(computed or {})
        self.steps: list[tuple[str, str | None, Converter, type | None]] = []
        columns: list[str] = []
        for name, field in serializer_class().fields.items():
            if field.write_only:
                continue
            if name in computed:
                self.steps.append((name, None, computed[name], None))
                continue
            column = str(field.source)
            if isinstance(field, relations.PrimaryKeyRelatedField):
                column = f"{column}_id"
            self.steps.append((name, column, _converter(field), _as_is(field)))
            columns.append(column)
        self.columns = tuple(columns)

    def row(self, values: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, column, convert, as_is in self.steps:
            if column is None:
                out[name] = convert(values)
                continue
            value = values[column]
            if value is None:
                out[name] = None
            elif type(value) is as_is:
                out[name] = value
            else:
                out[name] = convert(value)
        return out

    def rows(self, values: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [self.row(item) for item in values]
