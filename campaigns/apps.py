from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "campaigns"

    def ready(self) -> None:
        from campaigns import receivers
        from campaigns.models import Handoff
        from customers.followups import event_handler_register
        from customers.signals import profile_merging
        from customers.timeline import timeline_source_register
        from privacy import registry

        event_handler_register(name="campaigns.triggers", handler=receivers.events_trigger_followup)
        profile_merging.connect(receivers.profile_merging, dispatch_uid="campaigns.merge")
        timeline_source_register(name="campaigns.touches", source=receivers.touch_timeline)
        from campaigns.preferences import CRITERION
        from segments.criteria import criterion_register

        criterion_register(CRITERION)
        registry.profiles_erasing.connect(receivers.profiles_erasing, dispatch_uid="campaigns.erase")
        registry.consent_ending.connect(receivers.consent_ending, dispatch_uid="campaigns.consent_ending")
        registry.register(registry.destination_sources, receivers.handoff_destinations)
        registry.register(registry.removal_webhooks, receivers.removal_webhook)
        registry.register(registry.access_sections, receivers.access_section)
        registry.register(registry.retained_files, (Handoff, "file", "created_at"))
