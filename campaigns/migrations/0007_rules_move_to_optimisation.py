"""Automated rules now belong to the optimisation app (same tables, renamed there)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0006_touch_handoff"),
        ("optimisation", "0001_rules_move_here"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.RemoveField(model_name="ruleevaluation", name="rule"),
                migrations.RemoveField(model_name="ruleevaluation", name="campaign"),
                migrations.DeleteModel(name="Rule"),
                migrations.DeleteModel(name="RuleEvaluation"),
            ],
        ),
    ]
