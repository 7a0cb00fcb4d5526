from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "insights"
    verbose_name = "Insights (what Cible learns)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from audiences.signals import audience_computed
        from customers.signals import profile_merging
        from insights import receivers
        from insights.criteria import CRITERIA
        from privacy import registry
        from segments.criteria import criterion_register

        for criterion in CRITERIA:
            criterion_register(criterion)
        audience_computed.connect(receivers.audience_computed, dispatch_uid="insights.audience_computed")
        profile_merging.connect(receivers.profile_merging, dispatch_uid="insights.merge")
        registry.profiles_erasing.connect(receivers.profiles_erasing, dispatch_uid="insights.erase")
        registry.register(registry.access_sections, receivers.access_section)
