"""Report jobs hold a lease while a worker writes them; figure keys include the workspace."""

from django.db import migrations, models


def interrupted(apps, schema_editor):
    """Jobs running under the code before leases hold none and would never be taken back: fail them."""
    model = apps.get_model("reporting", "ReportJob")
    model._base_manager.filter(status="running").update(
        status="failed", error="Interrupted by an upgrade of Cible: run it again."
    )


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0004_attribution_day"),
    ]

    operations = [
        migrations.AddField(
            model_name="reportjob",
            name="lease_token",
            field=models.UUIDField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="reportjob",
            name="lease_expires_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="reportjob",
            name="lease_recoveries",
            field=models.PositiveSmallIntegerField(
                default=0, editable=False, help_text="Runs lost in a row (worker killed); reset when a run ends."
            ),
        ),
        migrations.RemoveConstraint(model_name="deliveryfigure", name="reporting_figure_key"),
        migrations.AddConstraint(
            model_name="deliveryfigure",
            constraint=models.UniqueConstraint(
                fields=["workspace", "campaign", "target", "channel", "day", "source"],
                condition=models.Q(("target__isnull", False)),
                name="reporting_figure_key",
            ),
        ),
        migrations.RemoveConstraint(model_name="deliveryfigure", name="reporting_figure_key_no_target"),
        migrations.AddConstraint(
            model_name="deliveryfigure",
            constraint=models.UniqueConstraint(
                fields=["workspace", "campaign", "channel", "day", "source"],
                condition=models.Q(("target__isnull", True)),
                name="reporting_figure_key_no_target",
            ),
        ),
        migrations.RunPython(interrupted, migrations.RunPython.noop),
    ]
