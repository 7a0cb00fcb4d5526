"""Campaign services: creation and edits (setup), the lifecycle's one transition service
(lifecycle), budgets and spend (budget).

Every state change goes through `campaign_transition`; every spend and budget change through
the ledger, under a lock on the campaign row, so caps hold with any number of writers. The
public services are importable from here.
"""

from campaigns.services.budget import (
    SpendResult,
    budget_change,
    spend_allowed_today,
    spend_correct,
    spend_planned_today,
    spend_record,
    with_spent_today,
)
from campaigns.services.lifecycle import (
    TRANSITIONS,
    campaign_activate,
    campaign_resume,
    campaign_transition,
    campaigns_tick,
)
from campaigns.services.setup import (
    campaign_create,
    campaign_ready_check,
    campaign_update,
    connector_check,
    target_add,
    target_check,
)

__all__ = [
    "TRANSITIONS",
    "SpendResult",
    "budget_change",
    "campaign_activate",
    "campaign_create",
    "campaign_ready_check",
    "campaign_resume",
    "campaign_transition",
    "campaign_update",
    "campaigns_tick",
    "connector_check",
    "spend_allowed_today",
    "spend_planned_today",
    "spend_correct",
    "spend_record",
    "target_add",
    "target_check",
    "with_spent_today",
]
