from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core.leases import leased_jobs_register

        leased_jobs_register()  # every app's leased jobs are taken back when their worker goes silent

        from django.db import models
        from rest_framework import serializers

        import core.checks
        from core.field_labels import translate_field_labels

        translate_field_labels()  # the field names the admin derives, in the user's language
        import core.folding  # registers the SQLite side of the text folding on each connection
        import core.lookups
        import core.schema  # noqa: F401  (registers the schema extensions: filter bounds, strict inputs)
        from core.serializers import STRICT_FIELD_MAPPING, DateTimeField, IsoDurationField

        # Every API duration reads and writes ISO 8601 (PT1H, P7D), not Python's "1 00:00:00".
        serializers.ModelSerializer.serializer_field_mapping[models.DurationField] = IsoDurationField
        serializers.ModelSerializer.serializer_field_mapping[models.DateTimeField] = DateTimeField
        # Text and boolean fields refuse values of another JSON type instead of converting them.
        serializers.ModelSerializer.serializer_field_mapping.update(STRICT_FIELD_MAPPING)
