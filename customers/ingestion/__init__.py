"""Bulk ingestion: profiles (upsert by external id), events and orders.

Every item carries an idempotency key; a key seen before makes the item a
duplicate, counted and skipped, whether the replay comes later or at the same
time (the unique index settles the race). Each item is validated on its own:
rejected items are reported by index with field, message and code, and the
valid ones land. A batch is one transaction, written with set-based statements:
the Python loops here run over the items of the request, never over the table.

`readers` checks each field of an item; `batches` reads a batch and writes it. The public
names are importable from here.
"""

from customers.ingestion.batches import INGESTERS, attributes_validate, events_ingest, orders_ingest, profiles_ingest
from customers.ingestion.readers import (
    EVENT_READERS,
    MAX_ITEM_IDENTITIES,
    MAX_LIST_ATTRIBUTE,
    MAX_ORDER_ITEMS,
    ORDER_READERS,
    PROFILE_READERS,
    IngestReport,
    ItemError,
    has_nul,
)

__all__ = [
    "EVENT_READERS",
    "INGESTERS",
    "MAX_ITEM_IDENTITIES",
    "MAX_LIST_ATTRIBUTE",
    "MAX_ORDER_ITEMS",
    "ORDER_READERS",
    "PROFILE_READERS",
    "IngestReport",
    "ItemError",
    "attributes_validate",
    "events_ingest",
    "has_nul",
    "orders_ingest",
    "profiles_ingest",
]
