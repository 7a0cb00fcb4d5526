"""Input serializers that say what they did not understand."""

from collections.abc import Mapping

from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from core.errors import CommonErrorCode


class StrictInput(serializers.Serializer):
    """Refuses top-level fields it does not know (`unknown_field`), instead of ignoring them: a
    misspelt field is an error the client sees, not a silent default."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(str(name) for name in set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [ErrorDetail("Unknown field.", code=CommonErrorCode.UNKNOWN_FIELD)] for name in unknown}
                )
        return super().to_internal_value(data)
