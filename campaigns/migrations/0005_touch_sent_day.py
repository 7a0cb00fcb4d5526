import zoneinfo

from django.db import migrations, models
from django.db.models.functions import TruncDate


def backfill(apps, schema_editor):
    """The local day of every touch already sent, one UPDATE per workspace (its time zone)."""
    Touch = apps.get_model("campaigns", "Touch")
    Workspace = apps.get_model("accounts", "Workspace")
    for workspace_id, zone in Workspace.objects.values_list("pk", "time_zone"):
        Touch.objects.filter(workspace_id=workspace_id, sent_at__isnull=False).update(
            sent_day=TruncDate("sent_at", tzinfo=zoneinfo.ZoneInfo(zone))
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("campaigns", "0004_rules_schedule"),
    ]

    operations = [
        migrations.AddField(
            model_name="touch",
            name="sent_day",
            field=models.DateField(
                blank=True, help_text="The day it was sent, in the workspace's time zone.", null=True
            ),
        ),
        migrations.RemoveIndex(model_name="touch", name="campaigns_touch_ws_sent"),
        migrations.AddIndex(
            model_name="touch",
            index=models.Index(fields=["workspace", "sent_day"], name="campaigns_touch_ws_sent_day"),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
