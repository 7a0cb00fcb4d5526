from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "privacy"
    verbose_name = "Privacy"

    def ready(self) -> None:
        from customers.signals import profile_merging, profile_viewed
        from privacy import receivers

        profile_merging.connect(receivers.profile_merging, dispatch_uid="privacy.merge")
        profile_viewed.connect(receivers.profile_viewed, dispatch_uid="privacy.viewed")
