from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from customers.signals import profile_merging
        from privacy import registry
        from segments import receivers

        profile_merging.connect(receivers.profile_merging, dispatch_uid="segments.merge")
        registry.profiles_erasing.connect(receivers.profiles_erasing, dispatch_uid="segments.erase")
        registry.register(registry.access_sections, receivers.access_section)
