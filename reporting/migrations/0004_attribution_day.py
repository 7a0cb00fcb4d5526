import datetime

from django.db import migrations, models


def forget_derived(apps, schema_editor):
    """Attributions and roll-ups are derived data: drop them, the next roll-up run rebuilds them."""
    apps.get_model("reporting", "Attribution").objects.all().delete()
    apps.get_model("reporting", "DailyRollup").objects.all().delete()
    apps.get_model("reporting", "RollupState").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0003_derived_without_constraints"),
        ("campaigns", "0005_touch_sent_day"),
    ]

    operations = [
        migrations.RunPython(forget_derived, migrations.RunPython.noop),
        migrations.RemoveIndex(model_name="attribution", name="reporting_attribution_campaign"),
        migrations.AddField(
            model_name="attribution",
            name="day",
            field=models.DateField(
                default=datetime.date(2000, 1, 1), help_text="The day of the order, in the workspace's time zone."
            ),
            preserve_default=False,
        ),
        migrations.AddIndex(
            model_name="attribution",
            index=models.Index(fields=["campaign", "day"], name="reporting_attribution_day"),
        ),
        migrations.AddField(
            model_name="rollupstate",
            name="attributed_with",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="The windows of the last full attribution; new ones attribute again.",
            ),
        ),
    ]
