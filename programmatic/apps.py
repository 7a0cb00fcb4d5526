from django.apps import AppConfig


class ProgrammaticConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "programmatic"
    verbose_name = "Programmatic buying"

    def ready(self) -> None:
        from audiences.signals import audience_computed, audience_members_followed
        from campaigns.signals import campaign_changed
        from customers.followups import event_handler_register
        from customers.signals import profiles_regrouped
        from privacy import registry
        from programmatic import receivers

        campaign_changed.connect(receivers.campaign_changed, dispatch_uid="programmatic.campaign")
        audience_computed.connect(receivers.audience_computed, dispatch_uid="programmatic.audience")
        audience_members_followed.connect(receivers.audience_members_followed, dispatch_uid="programmatic.followed")
        profiles_regrouped.connect(receivers.profiles_regrouped, dispatch_uid="programmatic.regrouped")
        registry.consent_ending.connect(receivers.consent_ending, dispatch_uid="programmatic.consent_ending")
        event_handler_register(name="programmatic.retargeting", handler=receivers.events_retarget)
        registry.profiles_erasing.connect(receivers.profiles_erasing, dispatch_uid="programmatic.erase")
