"""Rule evaluations carry their workspace."""

import django.db.models.deletion
from django.db import migrations, models

PARENTS = [("ruleevaluation", "rule")]


def fill_workspace(apps, schema_editor):
    """Each row takes the workspace of its parent (rule)."""
    for model_name, parent in PARENTS:
        model = apps.get_model("optimisation", model_name)
        parent_model = model._meta.get_field(parent).related_model
        model._base_manager.update(
            workspace_id=models.Subquery(
                parent_model._base_manager.filter(pk=models.OuterRef(parent + "_id")).values("workspace_id")[:1]
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("optimisation", "0001_rules_move_here"),
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="ruleevaluation",
            name="workspace",
            field=models.ForeignKey(
                db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.workspace"
            ),
        ),
        migrations.RunPython(fill_workspace, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="ruleevaluation",
            name="workspace",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.workspace"
            ),
        ),
    ]
