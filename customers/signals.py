"""Signals that higher apps listen to, so customers never imports them.

Each app that keeps rows pointing at profiles connects its handlers in its
AppConfig.ready; customers stays unaware of who listens.
"""

from django.dispatch import Signal

# Sent inside a merge's transaction (one or many profiles at once), after the profiles are locked
# and before the merged ones are deleted: workspace_id, journal (customers.merging.MergeJournal).
# Each receiver moves its own app's rows with `journal.move(model=..., name=..., unique_with=...)`,
# which journals them for an unmerge and counts them for the merge's record. A receiver that
# fails rolls the whole merge back: nothing is half-merged or lost.
profile_merging = Signal()

# Sent after a merge or an unmerge has committed: workspace_id, profile_ids (the survivors, and a
# profile an unmerge restored), gone_ids (profiles merged away). Audiences re-evaluate these
# people in their current versions and the bidder's identity map follows, at once.
profiles_regrouped = Signal()

# Sent when someone views one person's data (the admin's change page): workspace_id, actor,
# object_type, object_id, profile_id, via. The privacy app writes it to the audit log.
profile_viewed = Signal()
