"""Durable storage of runs: the Store protocol and its SQLite implementation."""

from ._blobs import BLOB_THRESHOLD
from ._migrations import SCHEMA_VERSION
from ._open import open_store
from ._protocol import LedgerEntry, RunSummary, Store
from ._sqlite import DEFAULT_PATH, SQLiteStore, Synchronous

__all__ = [
    "BLOB_THRESHOLD",
    "DEFAULT_PATH",
    "SCHEMA_VERSION",
    "LedgerEntry",
    "RunSummary",
    "SQLiteStore",
    "Store",
    "Synchronous",
    "open_store",
]
