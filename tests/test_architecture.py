"""The shape of the code: layers that run one way, and tables that can be distributed by workspace."""

import tomllib

from django.apps import apps
from django.conf import settings
from django.db.models import CompositePrimaryKey, UniqueConstraint

from core import LAYERS
from tests.conftest import ROOT

# Tables that may lack `workspace_id`, or whose unique keys may leave it out, and why.
NO_WORKSPACE = {
    "accounts.Workspace": "the tenant itself: the row every other row belongs to",
}
KEYS_WITHOUT_WORKSPACE = {
    # A one-to-one with a parent row of the same workspace: the key is the parent's bigint id,
    # unique across workspaces already. The distribution migration (Citus) widens these to
    # (workspace_id, parent_id) together with the parent's own primary key.
    ("accounts.Workspace", ("slug",)): "the tenant's own address, unique across the installation",
    ("segments.SegmentAnalysis", ("segment",)): "one analysis per segment (one-to-one)",
    ("audiences.Audience", ("segment",)): "one audience per segment (one-to-one)",
    ("reporting.Click", ("event",)): "one click per click event (one-to-one)",
    ("reporting.Attribution", ("order",)): "one attribution per order (one-to-one)",
    ("insights.Persona", ("segment",)): "one segment per persona (one-to-one)",
    ("programmatic.LineItem", ("target",)): "one line item per target (one-to-one)",
    # Composite primary keys cannot be altered by Django's migrations; both tables carry
    # workspace_id, and the distribution migration recreates their keys with it first.
    ("audiences.AudienceMember", ("audience", "version", "profile")): "composite primary key",
    ("audiences.AudienceExportMember", ("export", "profile")): "composite primary key",
}


def cible_models():
    return [m for m in apps.get_models() if m._meta.app_label in LAYERS and not m._meta.proxy]


def unique_keys(model) -> list[tuple[str, ...]]:
    keys = [tuple(c.fields) for c in model._meta.constraints if isinstance(c, UniqueConstraint) and c.fields]
    keys += [tuple(k) for k in model._meta.unique_together]
    keys += [(f.name,) for f in model._meta.concrete_fields if f.unique and not f.primary_key]
    if isinstance(model._meta.pk, CompositePrimaryKey):
        keys.append(tuple(f.name for f in model._meta.pk.fields))
    return keys


def test_every_business_table_carries_its_workspace():
    missing = sorted(
        m._meta.label
        for m in cible_models()
        if "workspace" not in {f.name for f in m._meta.concrete_fields} and m._meta.label not in NO_WORKSPACE
    )
    assert missing == []


def test_every_unique_key_includes_the_workspace():
    found = {
        (m._meta.label, key): None
        for m in cible_models()
        for key in unique_keys(m)
        if "workspace" not in key and key != ("workspace",)
    }
    unexplained = sorted(set(found) - set(KEYS_WITHOUT_WORKSPACE))
    assert unexplained == []
    stale = sorted(set(KEYS_WITHOUT_WORKSPACE) - set(found))
    assert stale == [], "an exception that no longer applies: take it off the list"


def test_the_import_contract_and_the_installed_apps_follow_the_one_layer_order():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = config["tool"]["importlinter"]["contracts"]
    assert contract["type"] == "layers"
    # The bidder, a process of its own, sits above everything (and imports programmatic.state only).
    assert contract["layers"] == ["bidder", "config", *reversed(LAYERS)]
    installed = [app for app in settings.INSTALLED_APPS if app in LAYERS]
    assert installed == list(LAYERS)


# Modules of services (writes) and selectors (reads): their public functions take keyword-only arguments.
SERVICE_MODULES = [
    "*/services.py",
    "*/services/*.py",
    "*/selectors.py",
    "audiences/exports.py",
    "campaigns/activation.py",
    "campaigns/triggers.py",
    "optimisation/reallocation.py",
    "optimisation/rules.py",
    "optimisation/dashboards.py",
    "privacy/consent.py",
    "privacy/destinations.py",
    "privacy/erasure.py",
    "privacy/requests.py",
    "privacy/retention.py",
    "reporting/dashboards.py",
    "reporting/reports.py",
    "segments/quantification.py",
]
# Pure helpers in those modules (no database, no side effect), called like functions of values.
POSITIONAL_ALLOWED = {"add_months", "allocate", "current_shares", "conditions_check", "add_months_dt", "parse_days"}


def test_services_and_selectors_take_keyword_only_arguments():
    import ast

    positional = []
    for pattern in SERVICE_MODULES:
        for path in sorted(ROOT.glob(pattern)):
            if path.parts[-2] in ("tests", "migrations") or path.name == "__init__.py":
                continue
            for node in ast.parse(path.read_text()).body:
                if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                    if (node.args.posonlyargs or node.args.args) and node.name not in POSITIONAL_ALLOWED:
                        positional.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert positional == []


def test_every_derived_field_name_is_listed_for_translation():
    """A new model field without a verbose_name gets its name from Django; core.field_labels must
    list it, or the admin would show it in English to a French user."""
    from core.field_labels import FIELD_LABELS, derived_fields

    missing = sorted({str(field.verbose_name) for field in derived_fields()} - set(FIELD_LABELS))
    assert missing == [], f"Add to core/field_labels.py: {missing}"
