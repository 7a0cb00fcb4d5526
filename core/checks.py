"""Deployment checks (`manage.py check --deploy`), also run when the WSGI application starts."""

from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, register

COLLECTSTATIC = "python manage.py collectstatic --no-input"


@register(Tags.staticfiles, deploy=True)
def static_manifest_check(app_configs=None, **kwargs) -> list[Error]:
    """In production mode the static files are served from their manifest (whitenoise): without
    `collectstatic` every admin page would answer 500 ("Missing staticfiles manifest entry")."""
    backend = settings.STORAGES.get("staticfiles", {}).get("BACKEND", "")
    if "Manifest" not in backend:
        return []
    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    if manifest.exists():
        return []
    return [
        Error(
            f"The static files are not collected: {manifest} is missing, so the admin would answer 500.",
            hint=f"Run `{COLLECTSTATIC}` (DJANGO_STATIC_ROOT names the folder).",
            id="cible.E001",
        )
    ]
