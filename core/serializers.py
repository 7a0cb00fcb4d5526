"""Input serializers that say what they did not understand."""

from collections.abc import Mapping

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from core.errors import CommonErrorCode


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
