import os

from config.queues import task_queues, task_routes
from config.settings import *  # noqa: F403
from config.settings import DATABASES, REST_FRAMEWORK

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        "anon": "100000/minute",
        "user": "100000/minute",
        "ingest": "100000/minute",
        # Real limits: the tests check them (tests/accounts/test_login_throttle.py).
        "login": "20/minute",
        "login_username": "5/minute",
    },
}
# The test worker has its own queue, so a developer's running worker never takes test tasks.
CELERY_TASK_DEFAULT_QUEUE = "cible-test"
CELERY_TASK_ROUTES = task_routes(CELERY_TASK_DEFAULT_QUEUE)
CELERY_TASK_QUEUES = task_queues(CELERY_TASK_DEFAULT_QUEUE)
# A worker started by the tests reads the test database pytest-django created.
if os.environ.get("CIBLE_TEST_DATABASE_NAME"):
    DATABASES["default"]["NAME"] = os.environ["CIBLE_TEST_DATABASE_NAME"]
# Tests talk plain HTTP to the test client and the live server.
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
