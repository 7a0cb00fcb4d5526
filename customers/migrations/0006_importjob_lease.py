"""Import jobs hold a lease while a worker runs them (core.leases)."""

from django.db import migrations, models


def interrupted(apps, schema_editor):
    """Jobs running under the code before leases hold none and would never be taken back: fail them."""
    model = apps.get_model("customers", "ImportJob")
    model._base_manager.filter(status="running").update(
        status="failed", failure="Interrupted by an upgrade of Cible: run it again."
    )


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0005_profile_erased_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="importjob",
            name="lease_token",
            field=models.UUIDField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="importjob",
            name="lease_expires_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="importjob",
            name="lease_recoveries",
            field=models.PositiveSmallIntegerField(
                default=0, editable=False, help_text="Runs lost in a row (worker killed); reset when a run ends."
            ),
        ),
        migrations.RunPython(interrupted, migrations.RunPython.noop),
    ]
