"""Manual members now belong to the segments app (same rows, table renamed there)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("audiences", "0004_audienceexportmember"),
        ("segments", "0003_manual_member_moves_here"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name="ManualMember")],
        ),
    ]
