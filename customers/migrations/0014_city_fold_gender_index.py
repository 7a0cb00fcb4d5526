"""The folded-city index (0010) also holds the gender, and the city itself (INCLUDE): the profile
list's `?city=&gender=` (the API's city filter compares folded, as segment rules do) counts its rows
by an index-only scan (PostgreSQL uses one for an expression only when the index also holds the
column), and rules on the city keep the index's first columns. Still one index on the table.

PostgreSQL only, as 0010."""

from django.db import migrations

from core.folding import fold_sql

NAME = "customers_profile_ws_city_fold"


def widen(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {NAME}")
    schema_editor.execute(
        f"CREATE INDEX {NAME} ON customers_profile (workspace_id, ({fold_sql('city')}), gender) INCLUDE (city)"
    )


def narrow(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {NAME}")
    schema_editor.execute(f"CREATE INDEX {NAME} ON customers_profile (workspace_id, {fold_sql('city')})")


class Migration(migrations.Migration):
    dependencies = [("customers", "0013_identity_db_defaults")]
    operations = [migrations.RunPython(widen, narrow)]
