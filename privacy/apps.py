from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "privacy"
    verbose_name = "Privacy"

    def ready(self) -> None:
        from customers.signals import profile_merging, profile_viewed
        from customers.timeline import timeline_source_register
        from privacy import receivers

        timeline_source_register(name="privacy.consents", source=receivers.consent_timeline)
        profile_merging.connect(receivers.profile_merging, dispatch_uid="privacy.merge")
        profile_viewed.connect(receivers.profile_viewed, dispatch_uid="privacy.viewed")
