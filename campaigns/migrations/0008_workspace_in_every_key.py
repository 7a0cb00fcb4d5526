"""Targets and transitions carry their workspace; unique keys include it."""

import django.db.models.deletion
from django.db import migrations, models

PARENTS = [("target", "campaign"), ("transition", "campaign")]


def fill_workspace(apps, schema_editor):
    """Each row takes the workspace of its parent (campaign, campaign)."""
    for model_name, parent in PARENTS:
        model = apps.get_model("campaigns", model_name)
        parent_model = model._meta.get_field(parent).related_model
        model._base_manager.update(
            workspace_id=models.Subquery(
                parent_model._base_manager.filter(pk=models.OuterRef(parent + "_id")).values("workspace_id")[:1]
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0007_rules_move_to_optimisation"),
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="ledgerentry", name="campaigns_ledger_key_unique"),
        migrations.AddConstraint(
            model_name="ledgerentry",
            constraint=models.UniqueConstraint(
                fields=["workspace", "campaign", "idempotency_key"], name="campaigns_ledger_key_unique"
            ),
        ),
        migrations.RemoveConstraint(model_name="pendingsend", name="campaigns_pending_once"),
        migrations.AddConstraint(
            model_name="pendingsend",
            constraint=models.UniqueConstraint(fields=["workspace", "target", "event"], name="campaigns_pending_once"),
        ),
        migrations.AddField(
            model_name="target",
            name="workspace",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="accounts.workspace",
            ),
        ),
        migrations.AddField(
            model_name="transition",
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
            model_name="target",
            name="workspace",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.workspace"
            ),
        ),
        migrations.AlterField(
            model_name="transition",
            name="workspace",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.workspace"
            ),
        ),
    ]
