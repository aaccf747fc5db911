"""Durable storage of runs: the Store protocol and its SQLite implementation."""

from ._blobs import BLOB_THRESHOLD
from ._migrations import SCHEMA_VERSION
from ._open import open_store
from ._protocol import Lease, LedgerEntry, RunSummary, Store
from ._sqlite import (
    DEFAULT_BUSY_TIMEOUT_MS,
    DEFAULT_PATH,
    SQLiteStore,
    Synchronous,
    enable_wal,
)

__all__ = [
    "BLOB_THRESHOLD",
    "DEFAULT_BUSY_TIMEOUT_MS",
    "DEFAULT_PATH",
    "SCHEMA_VERSION",
    "Lease",
    "LedgerEntry",
    "RunSummary",
    "SQLiteStore",
    "Store",
    "Synchronous",
    "enable_wal",
    "open_store",
]
