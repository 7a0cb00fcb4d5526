import os

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

from core.checks import static_manifest_check  # noqa: E402  (Django is set up by the line above)

# Fail at start-up, naming the command to run, rather than answer 500 on every admin page.
for problem in static_manifest_check():
    raise ImproperlyConfigured(f"{problem.msg} {problem.hint}")
