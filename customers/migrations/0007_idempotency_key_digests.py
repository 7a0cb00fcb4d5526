"""Idempotency keys are kept as SHA-256 digests: a client's key can embed a customer id.

One UPDATE per table on both databases (SQLite gets the digest as a function of the connection).
Replays of keys sent before keep being recognised: the ingestion compares digests.
"""

import hashlib

from django.db import migrations

TABLES = ("customers_event", "customers_ingestreceipt")


def _sha256(text):
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def digest_keys(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for table in TABLES:
                cursor.execute(
                    f"UPDATE {table} SET idempotency_key = encode(sha256(convert_to(idempotency_key, 'UTF8')), 'hex')"
                )
        else:
            connection.connection.create_function("cible_sha256", 1, _sha256, deterministic=True)
            for table in TABLES:
                cursor.execute(f"UPDATE {table} SET idempotency_key = cible_sha256(idempotency_key)")


class Migration(migrations.Migration):
    dependencies = [("customers", "0006_importjob_lease")]

    operations = [migrations.RunPython(digest_keys, migrations.RunPython.noop, elidable=False)]
