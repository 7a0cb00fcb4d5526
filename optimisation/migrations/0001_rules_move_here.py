"""Automated rules and their evaluations move here from campaigns: the same rows, the tables
renamed, the scheduled task renamed."""

import django.core.validators
import django.db.models.deletion
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


OLD, NEW = "campaigns.tasks.rules_due_task", "optimisation.tasks.rules_due_task"


def rename_task(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task=OLD).update(task=NEW)


def unrename_task(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task=NEW).update(task=OLD)


OLD_APP, NEW_APP, MOVED = "campaigns", "optimisation", ['rule', 'ruleevaluation']

def move_content_types(apps, schema_editor):
    """The admin's history of these rows follows them to their new app."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in MOVED:
        if not ContentType.objects.filter(app_label=NEW_APP, model=model).exists():
            ContentType.objects.filter(app_label=OLD_APP, model=model).update(app_label=NEW_APP)


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ('accounts', '0001_initial'),
        ('campaigns', '0006_touch_handoff'),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='Rule',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=120)),
                        ('enabled', models.BooleanField(default=True)),
                        ('conditions', models.JSONField(default=list, help_text='All must hold, e.g. [{"kpi": "roas", "days": 7, "operator": "lt", "threshold": "1.5"}].')),
                        ('basis', models.CharField(choices=[('attributed', 'Conversions attributed by Cible'), ('reported', 'Conversions reported by the platforms')], default='attributed', max_length=10)),
                        ('min_impressions', models.PositiveBigIntegerField(default=0, help_text='Guard: do nothing before the look-back window has this many impressions.')),
                        ('min_spend', models.DecimalField(decimal_places=2, default=Decimal('0'), help_text='Guard: or this spend.', max_digits=14, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                        ('action', models.CharField(choices=[('pause', 'Pause the campaign'), ('cancel', 'Cancel the campaign'), ('resume', 'Resume the campaign'), ('budget_percent', 'Change the budget by a percentage'), ('budget_amount', 'Change the budget by an amount'), ('notify', 'Notify only'), ('reallocate', 'Move budget shares to the best targets')], max_length=16)),
                        ('budget_field', models.CharField(choices=[('total', 'Total budget'), ('daily', 'Daily budget')], default='total', max_length=5)),
                        ('change_percent', models.DecimalField(blank=True, decimal_places=2, help_text='e.g. -20 to cut the budget by a fifth.', max_digits=6, null=True, validators=[django.core.validators.MinValueValidator(Decimal('-100')), django.core.validators.MaxValueValidator(Decimal('1000'))])),
                        ('change_amount', models.DecimalField(blank=True, decimal_places=2, help_text='Signed, e.g. -500.', max_digits=14, null=True)),
                        ('budget_min', models.DecimalField(blank=True, decimal_places=2, help_text='Never below this.', max_digits=14, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                        ('budget_max', models.DecimalField(blank=True, decimal_places=2, help_text='Never above this.', max_digits=14, null=True, validators=[django.core.validators.MinValueValidator(Decimal('0'))])),
                        ('reallocation_metric', models.CharField(blank=True, choices=[('roas', 'ROAS'), ('cpa', 'CPA')], default='roas', max_length=4)),
                        ('min_share', models.DecimalField(decimal_places=2, default=Decimal('10'), help_text='Reallocation: no target gets less, in percent.', max_digits=5, validators=[django.core.validators.MinValueValidator(Decimal('0')), django.core.validators.MaxValueValidator(Decimal('100'))])),
                        ('learning_conversions', models.PositiveIntegerField(default=5, help_text='Reallocation: a target with fewer conversions is still learning and keeps its share.')),
                        ('notify_url', models.URLField(blank=True, help_text='A webhook told of each action (signed).', max_length=500)),
                        ('notify_secret', models.CharField(blank=True, max_length=200)),
                        ('notify_email', models.EmailField(blank=True, max_length=254)),
                        ('schedule', models.CharField(choices=[('30min', 'Every 30 minutes'), ('hourly', 'Hourly'), ('daily', 'Daily')], default='hourly', max_length=6)),
                        ('next_run_at', models.DateTimeField(blank=True, editable=False, null=True)),
                        ('last_run_at', models.DateTimeField(blank=True, editable=False, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('campaign', models.ForeignKey(blank=True, help_text='Empty: every active or paused campaign of the workspace.', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='rules', to='campaigns.campaign')),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='rules', to='accounts.workspace')),
                    ],
                    options={'db_table': 'campaigns_rule', 
                        'ordering': ['name', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='RuleEvaluation',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('at', models.DateTimeField()),
                        ('source', models.CharField(help_text='schedule or manual.', max_length=10)),
                        ('seen', models.JSONField(default=dict, help_text="The figures of each condition's window.")),
                        ('matched', models.BooleanField()),
                        ('outcome', models.CharField(choices=[('acted', 'Acted'), ('not_met', 'Conditions not met'), ('guarded', 'Not enough data (guard)'), ('no_change', 'Met, nothing to change'), ('failed', 'Failed')], max_length=10)),
                        ('action', models.CharField(choices=[('pause', 'Pause the campaign'), ('cancel', 'Cancel the campaign'), ('resume', 'Resume the campaign'), ('budget_percent', 'Change the budget by a percentage'), ('budget_amount', 'Change the budget by an amount'), ('notify', 'Notify only'), ('reallocate', 'Move budget shares to the best targets')], max_length=16)),
                        ('detail', models.TextField(blank=True)),
                        ('campaign', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='rule_evaluations', to='campaigns.campaign')),
                        ('rule', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='evaluations', to='optimisation.rule')),
                    ],
                    options={'db_table': 'campaigns_ruleevaluation', 
                        'ordering': ['-at', '-id'],
                    },
                ),
                migrations.AddIndex(
                    model_name='rule',
                    index=models.Index(fields=['enabled', 'next_run_at'], name='campaigns_rule_due'),
                ),
                migrations.AddConstraint(
                    model_name='rule',
                    constraint=models.UniqueConstraint(fields=('workspace', 'name'), name='campaigns_rule_name_unique'),
                ),
                migrations.AddIndex(
                    model_name='ruleevaluation',
                    index=models.Index(fields=['rule', 'at'], name='campaigns_ruleeval_rule'),
                ),
            ],
        ),
        migrations.AlterModelTable(name="rule", table=None),
        migrations.AlterModelTable(name="ruleevaluation", table=None),
        migrations.RenameIndex(model_name="rule", new_name="optimisation_rule_due", old_name="campaigns_rule_due"),
        migrations.RenameIndex(
            model_name="ruleevaluation", new_name="optimisation_ruleeval_rule", old_name="campaigns_ruleeval_rule"
        ),
        migrations.RemoveConstraint(model_name="rule", name="campaigns_rule_name_unique"),
        migrations.AddConstraint(
            model_name="rule",
            constraint=models.UniqueConstraint(fields=("workspace", "name"), name="optimisation_rule_name_unique"),
        ),
        migrations.RunPython(rename_task, unrename_task),
        migrations.RunPython(move_content_types, migrations.RunPython.noop),
    ]
