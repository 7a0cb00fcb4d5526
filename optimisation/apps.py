from django.apps import AppConfig


class OptimisationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "optimisation"
    verbose_name = "Optimisation (automated rules, reallocation)"
