from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "campaigns"

    def ready(self) -> None:
        from campaigns import receivers  # noqa: F401  (triggered campaigns listen to ingested events)
