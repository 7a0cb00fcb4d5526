import os

from celery import Celery

from config import observability  # noqa: F401  (connects the task log context and the worker heartbeat)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("cible")
# Every Celery setting lives in config/settings.py under the CELERY_ namespace.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
