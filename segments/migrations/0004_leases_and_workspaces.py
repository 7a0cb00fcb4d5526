"""Analyses hold a lease while a worker computes them and carry their workspace; manual
members are unique per workspace, segment and person."""

import django.db.models.deletion
from django.db import migrations, models

PARENTS = [("segmentanalysis", "segment")]


def fill_workspace(apps, schema_editor):
    """Each row takes the workspace of its parent (segment)."""
    for model_name, parent in PARENTS:
        model = apps.get_model("segments", model_name)
        parent_model = model._meta.get_field(parent).related_model
        model._base_manager.update(
            workspace_id=models.Subquery(
                parent_model._base_manager.filter(pk=models.OuterRef(parent + "_id")).values("workspace_id")[:1]
            )
        )


def interrupted(apps, schema_editor):
    """Jobs running under the code before leases hold none and would never be taken back: fail them."""
    model = apps.get_model("segments", "SegmentAnalysis")
    model._base_manager.filter(status="running").update(
        status="failed", error="Interrupted by an upgrade of Cible: run it again."
    )


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0003_manual_member_moves_here"),
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="segmentanalysis",
            name="lease_token",
            field=models.UUIDField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="segmentanalysis",
            name="lease_expires_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="segmentanalysis",
            name="lease_recoveries",
            field=models.PositiveSmallIntegerField(
                default=0, editable=False, help_text="Runs lost in a row (worker killed); reset when a run ends."
            ),
        ),
        migrations.RemoveConstraint(model_name="manualmember", name="segments_manualmember_unique"),
        migrations.AddConstraint(
            model_name="manualmember",
            constraint=models.UniqueConstraint(
                fields=["workspace", "segment", "profile"], name="segments_manualmember_unique"
            ),
        ),
        migrations.AddField(
            model_name="segmentanalysis",
            name="workspace",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="accounts.workspace",
            ),
        ),
        migrations.RunPython(fill_workspace, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="segmentanalysis",
            name="workspace",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.workspace"
            ),
        ),
        migrations.RunPython(interrupted, migrations.RunPython.noop),
    ]
