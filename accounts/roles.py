"""What each role may do. One table, read by the API permission and the admin.

A capability is a verb on a family of data; views and admin classes declare
the capability they need, never a list of roles.
"""

from enum import StrEnum

from accounts.models import Role


class Capability(StrEnum):
    READ = "read"  # see the workspace's customer data, segments and campaigns
    WRITE_CUSTOMERS = "write_customers"  # profiles, identities, events, orders, imports
    MERGE_PROFILES = "merge_profiles"
    RECORD_CONSENT = "record_consent"  # append a consent record
    MANAGE_WORKSPACE = "manage_workspace"  # workspace settings and members
    EXPORT_PLAIN = "export_plain"  # export raw e-mails and phones (hashed exports need WRITE_CUSTOMERS)
    RUN_CAMPAIGNS = "run_campaigns"  # create, activate, pause, cancel campaigns; budgets, spend, frequency caps
    # data-subject requests (access, erasure, objection...), the suppression list, retention, the audit log
    HANDLE_PRIVACY = "handle_privacy"


ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.VIEWER: frozenset({Capability.READ}),
    Role.MARKETER: frozenset(
        {Capability.READ, Capability.WRITE_CUSTOMERS, Capability.RECORD_CONSENT, Capability.RUN_CAMPAIGNS}
    ),
    Role.MANAGER: frozenset(
        {
            Capability.READ,
            Capability.WRITE_CUSTOMERS,
            Capability.RECORD_CONSENT,
            Capability.MERGE_PROFILES,
            Capability.EXPORT_PLAIN,
            Capability.RUN_CAMPAIGNS,
        }
    ),
    Role.PRIVACY_OFFICER: frozenset(
        {Capability.READ, Capability.RECORD_CONSENT, Capability.MERGE_PROFILES, Capability.HANDLE_PRIVACY}
    ),
    Role.ADMIN: frozenset(Capability),
}


def role_can(role: str | None, capability: Capability) -> bool:
    return role is not None and capability in ROLE_CAPABILITIES.get(role, frozenset())
