"""The API's JSON parser (kept apart from core.api: DRF reads the parser classes while its views load).

Bodies are parsed by orjson when that gives the same answer as the standard library, and by
the standard library otherwise, so the errors a client sees never depend on the fast path:
- orjson refuses what `json` accepts (a lone surrogate, NaN, a byte order mark): the body is
  parsed again by `json` and the limits of `core.payloads` name the bad place, as before;
- orjson reads an integer past 64 bits as a float, silently: a body with a run of 19 digits or
  more (an integer that may pass int64, or a long digit string) takes the `json` path, whose
  `payload_check` refuses the integer with its path.
- orjson keeps the last of an object's repeated keys, silently: when the keys written in the body
  (a `"` followed by `:`, countable only when no text holds an escaped quote) outnumber the keys
  of the objects parsed, the body takes the `json` path, whose decoder names the repeated key.
- orjson refuses a number that overflows a double (`1e999`), which `json` reads as infinity:
  `payload_check` refuses it with its path.
On the fast path the texts are valid Unicode and the integers fit, by construction, so only the
depth and the number of keys are left to check, over containers only. On 10,000 ingested events
(2 MB) that is ~30 ms for parse and checks.
"""

import codecs
import re

import orjson
from django.conf import settings
from rest_framework import exceptions
from rest_framework.exceptions import ErrorDetail
from rest_framework.parsers import JSONParser

from core.errors import CommonErrorCode
from core.payloads import MAX_JSON_DEPTH, PayloadProblem, depth_check, json_loads, payload_check

# 19 digits reach 10**18: anything shorter is well inside int64.
_LONG_DIGITS = re.compile(rb"\d{19,}")
# A key's closing quote with blanks before its colon (`"a" : 1`), rare, so searched apart.
_SPACED_KEY_END = re.compile(rb'"[ \t\r\n]+:')


class SafeJSONParser(JSONParser):
    """JSON bodies within the limits of `core.payloads`: too deep, a lone surrogate or an integer
    past 64 bits is a 400 naming where it is, never a server error."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read() if stream is not None else b""
        data = self._fast(raw, encoding)
        if data is _SLOW:
            data = self._standard(raw, media_type, parser_context)
        return data

    def _fast(self, raw: bytes, encoding: str):
        if codecs.lookup(encoding).name != "utf-8" or _LONG_DIGITS.search(raw) or b'\\"' in raw:
            return _SLOW
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _SLOW  # the standard parser says what is wrong, or accepts what orjson does not
        keys_written = raw.count(b'":') + len(_SPACED_KEY_END.findall(raw))
        if keys_written != _check(depth_check, data):
            return _SLOW  # a key given twice: the standard parser names it
        return data

    def _standard(self, raw: bytes, media_type, parser_context):
        try:
            data = json_loads(raw.decode(parser_context.get("encoding", settings.DEFAULT_CHARSET)))
        except (UnicodeDecodeError, LookupError, ValueError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        except RecursionError:
            raise exceptions.ValidationError(
                {"non_field_errors": [ErrorDetail(TOO_DEEP_MESSAGE, code=CommonErrorCode.TOO_DEEP)]}
            ) from None
        _check(payload_check, data)
        return data


_SLOW = object()


def _check(check, data):
    try:
        return check(data)
    except PayloadProblem as problem:
        raise exceptions.ValidationError({problem.path: [ErrorDetail(problem.message, code=problem.code)]}) from None


TOO_DEEP_MESSAGE = f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels."
