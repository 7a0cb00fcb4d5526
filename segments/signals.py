"""Signals higher apps listen to, so segments never imports them."""

from django.dispatch import Signal

# Sent inside the creating transaction: segment. Audiences opens the segment's audience.
segment_created = Signal()
