from django.apps import AppConfig


class AudiencesConfig(AppConfig):
    name = "audiences"
    verbose_name = "Audiences"

    def ready(self) -> None:
        from audiences import receivers
        from audiences.models import AudienceExport
        from audiences.services import audiences_recover
        from core.leases import lease_recoverer_register
        from customers.signals import profile_merging, profiles_regrouped
        from privacy import registry
        from segments.membership import membership_provider_register
        from segments.signals import segment_created

        lease_recoverer_register(name="audiences", recover=audiences_recover)
        membership_provider_register(receivers.current_audiences)
        segment_created.connect(receivers.audience_open, dispatch_uid="audiences.open")
        profile_merging.connect(receivers.profile_merging, dispatch_uid="audiences.merge")
        profiles_regrouped.connect(receivers.profiles_regrouped, dispatch_uid="audiences.regrouped")
        registry.profiles_erasing.connect(receivers.profiles_erasing, dispatch_uid="audiences.erase")
        registry.register(registry.destination_sources, receivers.export_destinations)
        registry.register(registry.access_sections, receivers.access_section)
        registry.register(registry.retained_files, (AudienceExport, "file", "created_at"))
