"""Signals higher apps listen to, so audiences never imports them."""

from django.dispatch import Signal

# Sent after a computation made a new version current (on commit): segment_id, workspace_id, version.
# Insights retrains the segment's membership model and re-ranks its lookalikes.
audience_computed = Signal()

# Sent after some people's memberships of current audiences were re-evaluated (a merge or an
# unmerge, on commit): workspace_id, profile_ids. Programmatic republishes them for the bidder.
audience_members_followed = Signal()
