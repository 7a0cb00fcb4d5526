"""The OpenAPI schema says how each operation fails, not only how it succeeds.

A drf-spectacular post-processing hook adds to every operation the error answers the API's
conventions give (core.api's exception handler): 400 with `{field: [{message, code}]}` where
the request carries a body or query parameters, 401/403 for authentication and roles, 404 where
the path names a workspace or a row, 409 where other rows may refuse the change, 413 and 415 for
bodies, 429 for the throttles. A client generated from the schema then knows every status it can
meet; the schema fuzz test checks that no other status is ever answered.
"""

from typing import Any

from django import forms
from django.core.validators import RegexValidator
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.drainage import has_override
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import is_list_serializer
from rest_framework import serializers
from rest_framework.serializers import ListSerializer

from core.serializers import DURATION_INPUT_PATTERN, URL_PATTERN, IsoDurationField, UniqueListField
from core.time import duration_iso

MESSAGE = {
    "type": "object",
    "properties": {"message": {"type": "string"}, "code": {"type": "string"}},
    "required": ["message", "code"],
}
FIELD_ERRORS = {
    "type": "object",
    "description": (
        "Each field (or non_field_errors) with its problems: a list of {message, code}; a nested field "
        "(a list of targets, the items of a batch) holds the same structure by position or by name."
    ),
    "additionalProperties": {
        "anyOf": [
            # a field's problems; a list of nested items holds, by position, an object per item
            {"type": "array", "items": {"anyOf": [MESSAGE, {"type": "object", "additionalProperties": True}]}},
            # a nested field's problems by name or position ({"0": {"restriction": [...]}})
            {"type": "object", "additionalProperties": True},
        ]
    },
}
DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "required": ["detail"],
}
_ERRORS = {
    "400": ("The request is invalid: each field with its problems.", "FieldErrors"),
    "401": ("No valid credentials were given.", "ErrorDetail"),
    "403": ("The caller's role does not allow this.", "ErrorDetail"),
    "404": ("No such workspace (for this caller) or row, or a page past the last.", "ErrorDetail"),
    "409": ("Refused because of other rows (a segment a campaign still uses...).", "FieldErrors"),
    "413": ("The body is too large.", "ErrorDetail"),
    "415": ("The body's media type is not accepted.", "ErrorDetail"),
    "429": ("Too many requests: wait and try again.", "ErrorDetail"),
}


def _response(status: str) -> dict[str, Any]:
    description, component = _ERRORS[status]
    schema: dict[str, Any] = {"$ref": f"#/components/schemas/{component}"}
    if component == "FieldErrors":  # a body that is not JSON at all is answered with a detail
        schema = {"anyOf": [schema, {"$ref": "#/components/schemas/ErrorDetail"}]}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("FieldErrors", FIELD_ERRORS)
    schemas.setdefault("ErrorDetail", DETAIL)
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            for parameter in operation.get("parameters", []):
                # An empty optional query parameter (`?basis=`, `?page_size=`) is as if it were absent.
                if parameter.get("in") == "query" and not parameter.get("required"):
                    parameter["allowEmptyValue"] = True
            body = operation.get("requestBody", {})
            for content in body.get("content", {}).values():
                if content.get("schema", {}).pop("x-body-required", False):
                    body["required"] = True  # a body given as a raw schema (a union) is not optional
            responses = operation.setdefault("responses", {})
            statuses = ["401", "403", "429"]
            has_body = "requestBody" in operation
            if has_body or operation.get("parameters") or method in ("post", "put", "patch"):
                statuses.append("400")
            if "{" in path or any(p.get("name") == "page" for p in operation.get("parameters", [])):
                statuses.append("404")  # no such workspace or row; a page past the last one
            if method in ("post", "put", "patch", "delete"):
                statuses.append("409")
            if has_body or method in ("post", "put", "patch"):
                statuses += ["413", "415"]
            for status in statuses:
                declared = responses.setdefault(status, _response(status))
                if "content" not in declared:  # a view's own description of the error: keep it, add the body
                    declared["content"] = _response(status)["content"]
            for status, declared in responses.items():
                if status in _ERRORS and "content" not in declared:
                    declared["content"] = _response(status)["content"]
    return result


def blank_choices_inline(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """A choice that may be blank (a frequency cap or a ledger entry for every channel) as one enum
    that includes "", instead of drf-spectacular's `oneOf: [ChannelEnum, BlankEnum]`, which
    generated clients turn into a separate BlankEnum type to test for."""
    schemas = result.get("components", {}).get("schemas", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            variants = node.get("oneOf")
            if isinstance(variants, list) and {"$ref": "#/components/schemas/BlankEnum"} in variants:
                values: list[Any] = []
                nullable = False
                for variant in variants:
                    ref = variant.get("$ref", "")
                    if ref.endswith("/NullEnum"):
                        nullable = True
                        continue
                    target = schemas.get(ref.rsplit("/", 1)[-1], variant)
                    values += [value for value in target.get("enum", []) if value not in values]
                merged = {k: v for k, v in node.items() if k != "oneOf"}
                merged.update(type="string", enum=values)
                if nullable:
                    merged["nullable"] = True
                return merged
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    result["paths"] = inline(result.get("paths", {}))
    for name in list(schemas):
        schemas[name] = inline(schemas[name])
    if "BlankEnum" in schemas and '"#/components/schemas/BlankEnum"' not in str(result).replace("'", '"'):
        del schemas["BlankEnum"]
    return result


# Stated as any JSON: what a free-form field holds (an order's items, an import's errors, a job's
# parameters) nests deeper than a schema generated clients can follow; the limits of core.payloads
# (32 levels, 64-bit integers, valid Unicode, finite numbers) apply to it all the same.
JSON_VALUE = {
    "description": (
        "Any JSON value: a text, a number, true/false, a list or an object, nested at most 32 levels, "
        "integers within 64 bits, numbers finite."
    ),
    "nullable": True,
}
JSON_OBJECT = {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/JsonValue"}}
# A year of the range every date shares (core.time: 1900 to 2999), at the start of a date or date-time.
YEARS_1900_2999 = r"^(19\d\d|2\d\d\d)-"


# No NUL, and something besides white space: what a required text takes, since it is trimmed. The
# white space is what Python's str.strip() removes, spelled out (`\s` differs between regex engines:
# Rust's, which validates here, leaves out U+001C to U+001F). Linear to match.
WHITE_SPACE = "\\u0009-\\u000d\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028-\\u2029\\u202f\\u205f\\u3000"
NON_BLANK_PATTERN = f"^[{WHITE_SPACE}]*[^{WHITE_SPACE}\\u0000][^\\u0000]*$"


class CibleAutoSchema(AutoSchema):
    """drf-spectacular's schema, stating the limits it leaves out: a nested list's item count and
    emptiness, a duration's form and bounds, the years a date may take, an address's form, a
    decimal's digits, any JSON value's limits (JsonValue)."""

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if not isinstance(schema, dict):
            return schema
        if direction == "request" and not has_override(field, "field"):
            schema = self._request_limits(field, schema)
        if (is_list_serializer(field) or isinstance(field, serializers.ListField)) and schema.get("type") == "array":
            if getattr(field, "max_length", None) is not None:
                schema["maxItems"] = field.max_length
            if getattr(field, "min_length", None) is not None:
                schema["minItems"] = field.min_length
            if getattr(field, "allow_empty", True) is False:
                schema["minItems"] = max(1, schema.get("minItems", 0))
            if isinstance(field, UniqueListField):
                schema["uniqueItems"] = True
        return self._free_form(field, schema)

    def _request_limits(self, field, schema: dict[str, Any]) -> dict[str, Any]:
        """What a request may send, stated: the limits the server enforces on each kind of field."""
        if isinstance(field, IsoDurationField):
            # A pattern, not format: duration: the older "1 00:00:00" form is still read (and stated).
            schema.pop("format", None)
            schema.update(type="string", maxLength=40, pattern=DURATION_INPUT_PATTERN)
            bounds = []
            for validator in field.validators:
                limit = getattr(validator, "limit_value", None)
                if limit is not None:
                    which = "At most" if type(validator).__name__.startswith("Max") else "At least"
                    bounds.append(f"{which} {duration_iso(limit)}.")
            if bounds:
                schema["description"] = " ".join(filter(None, [schema.get("description", ""), *bounds]))
                schema["x-bounds"] = " ".join(bounds)
        elif isinstance(field, serializers.IPAddressField):
            schema.pop("format", None)
            schema.update(
                maxLength=45, anyOf=[{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}]
            )
        elif isinstance(field, serializers.URLField):
            schema.update(maxLength=min(getattr(field, "max_length", None) or 2000, 2000), pattern=URL_PATTERN)
        elif isinstance(field, serializers.CharField) and schema.get("type") == "string":
            regexes = [
                getattr(validator.regex, "pattern", str(validator.regex))
                for validator in field.validators
                if isinstance(validator, RegexValidator) and not validator.inverse_match
            ]
            if regexes and "pattern" not in schema:
                schema["pattern"] = regexes[0].replace("\\Z", "$")  # a model's RegexValidator (a key, a country)
            elif not {"pattern", "enum", "format"} & set(schema):
                if not field.allow_blank and field.trim_whitespace:
                    # Spaces around a text are trimmed, so a required text holds something else.
                    schema["pattern"] = NON_BLANK_PATTERN
                else:
                    schema["pattern"] = "^[^\\x00]*$"  # a text holds no NUL character (refused with a 400)
        elif isinstance(field, serializers.IntegerField) and schema.get("type") == "integer":
            schema.setdefault("maximum", 2**63 - 1)
            schema.setdefault("minimum", -(2**63))
        elif isinstance(field, serializers.DecimalField):
            # Sent as a number (a string of digits is read too): its bounds and decimals can be stated.
            whole = (field.max_digits or 20) - (field.decimal_places or 0)
            limit = float(10**whole) - 10.0 ** -(field.decimal_places or 0)
            keep: dict[str, Any] = {key: schema[key] for key in ("description", "nullable", "default") if key in schema}
            schema = {
                "type": "number",
                "minimum": float(field.min_value) if field.min_value is not None else -limit,
                "maximum": float(field.max_value) if field.max_value is not None else limit,
                **keep,
            }
            if field.decimal_places:
                schema["multipleOf"] = float(f"1e-{field.decimal_places}")
        elif isinstance(field, serializers.DateTimeField | serializers.DateField):
            schema.setdefault("pattern", getattr(field, "schema_year_pattern", YEARS_1900_2999))
        return schema

    def _free_form(self, field, schema: dict[str, Any]) -> dict[str, Any]:
        if isinstance(field, serializers.JSONField) and not has_override(field, "field") and "$ref" not in schema:
            keep: dict[str, Any] = {
                key: schema[key] for key in ("description", "readOnly", "nullable") if key in schema
            }
            schema = (
                {"$ref": "#/components/schemas/JsonValue"}
                if not keep
                else {"allOf": [{"$ref": "#/components/schemas/JsonValue"}], **keep}
            )
        elif isinstance(field, serializers.DictField) and schema.get("type") == "object":
            if schema.get("additionalProperties") in (None, True, {}):
                schema["additionalProperties"] = {"$ref": "#/components/schemas/JsonValue"}
        return schema


def json_value_component(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """The JsonValue component the schema's free-form fields point at."""
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault("JsonValue", JSON_VALUE)
    return result


class FilterExtension(DjangoFilterExtension):
    """django-filter parameters with the bounds their forms enforce (`min_value`, `max_value`).

    Without them the schema says "any number" for a filter that refuses -1 or 200, and a client
    generated from the schema sends values the server answers with a 400.
    """

    priority = 1
    match_subclasses = True

    def resolve_filter_field(self, auto_schema, model, filterset_class, field_name, filter_field):
        parameters = super().resolve_filter_field(auto_schema, model, filterset_class, field_name, filter_field)
        bounds = {
            key: filter_field.extra[name]
            for key, name in (("minimum", "min_value"), ("maximum", "max_value"))
            if filter_field.extra.get(name) is not None
        }
        field_class = filter_field.field_class
        kind = "integer" if issubclass(field_class, forms.IntegerField) else None
        if issubclass(field_class, forms.DecimalField | forms.FloatField):
            kind = "number"  # an amount's filter takes cents, whatever the model field's type was read as
        for parameter in parameters:
            schema = parameter["schema"]
            if kind and schema.get("type") in ("integer", "number"):
                schema["type"] = kind
                schema.pop("format", None)
            schema.update(bounds)
            if schema.get("type") == "string" and not {"enum", "format", "pattern"} & set(schema):
                schema["pattern"] = "^[^\\x00]*$"  # a query string holds no NUL character (refused with a 400)
        return parameters


class StrictInputExtension(OpenApiSerializerExtension):
    """A StrictInput body refuses fields it does not know (`unknown_field`): `additionalProperties: false`."""

    target_class = "core.serializers.StrictInput"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
            # A nested `many=True` list with max_length/min_length: drf-spectacular leaves the bounds out.
            for name, field in self.target.fields.items():
                prop = schema.get("properties", {}).get(name)
                if isinstance(field, ListSerializer) and prop is not None and prop.get("type") == "array":
                    if field.max_length is not None:
                        prop["maxItems"] = field.max_length
                    if field.min_length is not None:
                        prop["minItems"] = field.min_length
        return schema
