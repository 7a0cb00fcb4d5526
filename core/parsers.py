"""The API's JSON parser (kept apart from core.api: DRF reads the parser classes while its views load)."""

from rest_framework import exceptions
from rest_framework.exceptions import ErrorDetail
from rest_framework.parsers import JSONParser

from core.errors import CommonErrorCode
from core.payloads import MAX_JSON_DEPTH, PayloadProblem, payload_check


class SafeJSONParser(JSONParser):
    """JSON bodies within the limits of `core.payloads`: too deep, a lone surrogate or an integer
    past 64 bits is a 400 naming where it is, never a server error."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ValidationError(
                {"non_field_errors": [ErrorDetail(TOO_DEEP_MESSAGE, code=CommonErrorCode.TOO_DEEP)]}
            ) from None
        try:
            payload_check(data)
        except PayloadProblem as problem:
            raise exceptions.ValidationError(
                {problem.path: [ErrorDetail(problem.message, code=problem.code)]}
            ) from None
        return data


TOO_DEEP_MESSAGE = f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels."
