from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core.leases import leased_jobs_register

        leased_jobs_register()  # every app's leased jobs are taken back when their worker goes silent
