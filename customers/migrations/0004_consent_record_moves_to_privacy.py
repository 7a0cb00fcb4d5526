"""The consent history now belongs to the privacy app (same table, renamed there)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0003_order_updated_index"),
        ("privacy", "0001_consent_record_moves_here"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name="ConsentRecord")],
        ),
    ]
