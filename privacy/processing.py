"""Records of processing activities (GDPR Art. 30), generated from the models' declarations.

Each model that holds personal data declares it (`personal_data`, see core.personal_data);
the report lists them, with the retention in force in the workspace where the declaration
names a retention setting.
"""

from django.apps import apps
from django.db.models import Model

from core.personal_data import PersonalData
from privacy.models import RetentionPolicy

RETENTION_WORDS = {
    "events_months": ("Events are deleted after {} months.", "Events are kept until erased (no limit set)."),
    "inactive_prospect_months": (
        "Prospects are erased after {} months without a qualifying contact; customers as long as the relationship.",
        "Prospects are kept until erased (no limit set).",
    ),
    "export_files_days": ("Files are deleted after {} days.", "Files are kept until erased (no limit set)."),
}


def declared_models() -> list[tuple[type[Model], PersonalData]]:
    found = []
    for model in apps.get_models():
        declaration = getattr(model, "personal_data", None)
        if isinstance(declaration, PersonalData):
            found.append((model, declaration))
    return sorted(found, key=lambda item: (item[0]._meta.app_label, item[0]._meta.model_name))


def retention_text(declaration: PersonalData, policy: RetentionPolicy) -> str:
    if declaration.retention not in RETENTION_WORDS:
        return declaration.retention
    value = getattr(policy, declaration.retention)
    limited, unlimited = RETENTION_WORDS[declaration.retention]
    return limited.format(value) if value else unlimited


def processing_records(*, workspace) -> list[dict]:
    """One entry per category of personal data held, with its purposes, basis and retention."""
    policy = RetentionPolicy.objects.filter(workspace=workspace).first() or RetentionPolicy(workspace=workspace)
    records = []
    for model, d in declared_models():
        records.append(
            {
                "category": d.category,
                "table": f"{model._meta.app_label}.{model._meta.model_name}",
                "fields": list(d.fields),
                "subjects": d.subjects,
                "purposes": list(d.purposes),
                "legal_basis": d.legal_basis,
                "retention": retention_text(d, policy),
                "recipients": list(d.recipients),
                "erasure": d.erasure,
            }
        )
    return records
