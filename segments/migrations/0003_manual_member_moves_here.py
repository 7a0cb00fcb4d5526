"""Manual inclusions and exclusions move from audiences to segments: segments own what
qualifies, audiences the materialised membership. Same rows, the table renamed, and each
row now carries its workspace (every business table does)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def fill_workspace(apps, schema_editor):
    ManualMember = apps.get_model("segments", "ManualMember")
    Segment = apps.get_model("segments", "Segment")
    ManualMember.objects.update(
        workspace_id=models.Subquery(Segment.objects.filter(pk=models.OuterRef("segment_id")).values("workspace_id")[:1])
    )


OLD_APP, NEW_APP, MOVED = "audiences", "segments", ['manualmember']

def move_content_types(apps, schema_editor):
    """The admin's history of these rows follows them to their new app."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label=NEW_APP, model=model).exists():
            ContentType.objects.filter(app_label=OLD_APP, model=model).update(app_label=NEW_APP)


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("accounts", "0001_initial"),
        ("customers", "0005_profile_erased_at"),
        ("segments", "0002_segment_analysis"),
        ("audiences", "0004_audienceexportmember"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="ManualMember",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("action", models.CharField(choices=[("include", "Always include"), ("exclude", "Always exclude")], max_length=8)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("created_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                        ("profile", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="customers.profile")),
                        ("segment", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="manual_members", to="segments.segment")),
                    ],
                    options={"db_table": "audiences_manualmember"},
                ),
                migrations.AddConstraint(
                    model_name="manualmember",
                    constraint=models.UniqueConstraint(fields=("segment", "profile"), name="audiences_manualmember_unique"),
                ),
            ],
        ),
        migrations.AlterModelTable(name="manualmember", table=None),
        migrations.RemoveConstraint(model_name="manualmember", name="audiences_manualmember_unique"),
        migrations.AddConstraint(
            model_name="manualmember",
            constraint=models.UniqueConstraint(fields=("segment", "profile"), name="segments_manualmember_unique"),
        ),
        migrations.AddField(
            model_name="manualmember",
            name="workspace",
            field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.workspace"),
        ),
        migrations.RunPython(fill_workspace, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="manualmember",
            name="workspace",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.workspace"),
        ),
        migrations.RunPython(move_content_types, migrations.RunPython.noop),
    ]
