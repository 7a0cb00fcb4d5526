from django.db import migrations

TASKS = {
    "Start and end the campaigns on time": "campaigns.tasks.campaigns_tick_task",
    "Send the triggered messages that are due": "campaigns.tasks.pending_sends_task",
}


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    for name, task in TASKS.items():
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": every_minute})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task__in=TASKS.values()).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
