"""What each model holds of a person: the source of the records of processing (GDPR Art. 30).

A model that stores personal data says so next to its fields, with a `personal_data`
class attribute; `privacy.processing` reads every model's declaration to build the
report, and a test fails when a model that points at a profile declares nothing.
This module imports no model, so any app may use it.
"""

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PersonalData:
    category: str  # the category of personal data, as the register names it
    fields: tuple[str, ...]  # the model fields that hold it
    purposes: tuple[str, ...]
    legal_basis: str
    # A workspace retention setting (privacy.RetentionPolicy field) or a fixed rule in words.
    retention: str
    subjects: str = "Customers and prospects"
    recipients: tuple[str, ...] = field(default=())
    erasure: str = "Removed or anonymised by an erasure request."


@dataclass(frozen=True)
class DerivedData:
    """A store that copies values of profiles into an aggregate (an analysis, a feature list, a
    persona): declared with a `derived_data` class attribute, so that privacy can say what it
    keeps and erasure knows what to recompute."""

    fields: tuple[str, ...]  # the model fields that hold copied values
    holds: str  # which values, in words
    # What an erasure does to it, in words; the app's `profiles_erasing` receiver does it.
    erasure: str
    floor: int = 0  # the fewest people a copied value stands for (AGGREGATE_FLOOR where it applies)


# The fewest people an aggregate may show a value of theirs for, when the value is not one the team
# declared (a closed answer, a listed option): free text one person wrote is never a facet, a
# column, a centroid or a persona's name, and no parameter lowers this.
AGGREGATE_FLOOR = 5


def key_digest(key: str) -> str:
    """What is kept of a client's idempotency key: its SHA-256 in hex.

    Clients build keys from their own ids (`C123:order:1`), so a key can carry a customer's
    identifier; its digest cannot, and replay detection compares digests just as well.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
