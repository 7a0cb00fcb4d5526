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


def key_digest(key: str) -> str:
    """What is kept of a client's idempotency key: its SHA-256 in hex.

    Clients build keys from their own ids (`C123:order:1`), so a key can carry a customer's
    identifier; its digest cannot, and replay detection compares digests just as well.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
