"""The campaigns admin: the campaign page (campaign) and what surrounds it (delivery)."""

from campaigns.admin.campaign import CampaignAdmin, CampaignForm, TargetInline
from campaigns.admin.delivery import (
    ChannelPreferenceAdmin,
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
    "ChannelPreferenceAdmin",
    "ConnectorAdmin",
    "FrequencyCapAdmin",
    "HandoffAdmin",
    "LedgerEntryAdmin",
    "PendingSendAdmin",
    "TargetInline",
    "TouchAdmin",
]
