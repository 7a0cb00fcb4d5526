"""Import jobs hold a lease while a worker runs them (core.leases)."""

from django.db import migrations, models


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
    ]
