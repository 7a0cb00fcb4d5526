"""Signals that higher apps listen to, so customers never imports them.

Each app that keeps rows pointing at profiles connects its handlers in its
AppConfig.ready; customers stays unaware of who listens.
"""

from django.dispatch import Signal

# Sent inside the merge's transaction, after both profiles are locked and before the merged
# one is deleted: survivor, merged. Each receiver moves its own app's rows that point at
# `merged` to `survivor` and returns {"<what>": <rows moved>} for the merge's record.
# A receiver that fails rolls the whole merge back: nothing is half-merged or lost.
profile_merging = Signal()

# Sent when someone views one person's data (the admin's change page): workspace_id, actor,
# object_type, object_id, profile_id, via. The privacy app writes it to the audit log.
profile_viewed = Signal()
