"""Signals other apps listen to, so customers never imports them."""

from django.dispatch import Signal

# Sent once the transaction that stored new events has committed: workspace_id, event_ids.
events_ingested = Signal()
