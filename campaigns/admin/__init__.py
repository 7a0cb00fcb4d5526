"""The campaigns admin: the campaign page (campaign) and what surrounds it (delivery)."""

from campaigns.admin.campaign import CampaignAdmin, CampaignForm, TargetInline
from campaigns.admin.delivery import (
    ConnectorAdmin,
    FrequencyCapAdmin,
    HandoffAdmin,
    LedgerEntryAdmin,
    PendingSendAdmin,
    TouchAdmin,
)

__all__ = [
    "CampaignAdmin",
    "CampaignForm",
    "ConnectorAdmin",
    "FrequencyCapAdmin",
    "HandoffAdmin",
    "LedgerEntryAdmin",
    "PendingSendAdmin",
    "TargetInline",
    "TouchAdmin",
]
