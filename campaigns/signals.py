"""Signals higher apps listen to, so campaigns never imports them."""

from django.dispatch import Signal

# Sent after a campaign changed state (on commit): workspace_id, campaign_id, status.
# Programmatic stops or starts the campaign's bids at once.
campaign_changed = Signal()
