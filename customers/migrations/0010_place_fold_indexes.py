"""Expression indexes for rules on place names, which compare folded text (core.folding), and a
partial index of the fixed sample a segment's estimate counts (segments.selectors).

PostgreSQL only: SQLite evaluates the folding through a function registered on each connection,
which an index must not depend on (a connection without it could not write the table)."""

from django.db import migrations

from core.folding import fold_sql

FIELDS = {"region": "customers_profile_ws_region_fold", "city": "customers_profile_ws_city_fold"}
# The fixed sample a segment's estimate counts (segments.selectors.SAMPLE_EVERY).
SAMPLE = "customers_profile_ws_sample"
SAMPLE_EVERY = 64


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column, name in FIELDS.items():
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON customers_profile (workspace_id, {fold_sql(column)})")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {SAMPLE} ON customers_profile (workspace_id, id) WHERE mod(id, {SAMPLE_EVERY}) = 0"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in [*FIELDS.values(), SAMPLE]:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("customers", "0009_coordinates_code")]
    operations = [migrations.RunPython(create, drop)]
