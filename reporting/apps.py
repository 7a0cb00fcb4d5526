from django.apps import AppConfig


class ReportingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "reporting"

    def ready(self) -> None:
        from customers.followups import event_handler_register
        from customers.signals import profile_merging
        from privacy import registry
        from reporting import receivers
        from reporting.services import clicks_record

        event_handler_register(name="reporting.clicks", handler=clicks_record)  # clicks come in as events
        profile_merging.connect(receivers.profile_merging, dispatch_uid="reporting.merge")
        registry.register(registry.access_sections, receivers.access_section)
