"""Durable storage of runs: the Store protocol and its SQLite implementation."""

from ._blobs import BLOB_THRESHOLD
from ._migrations import (
    CORE_MIGRATIONS,
    SCHEMA_VERSION,
    MigrationSet,
    applied_version,
    apply_migrations,
)
from ._open import open_store
from ._projection import LedgerOutcome, project_ledger, project_run
from ._protocol import Lease, LedgerEntry, Rows, RunSummary, Store, Transaction, Within
from ._sqlite import (
    DEFAULT_BUSY_TIMEOUT_MS,
    DEFAULT_PATH,
    SQLiteStore,
    Synchronous,
    check_synchronous,
    enable_wal,
)

__all__ = [
    "BLOB_THRESHOLD",
    "CORE_MIGRATIONS",
    "DEFAULT_BUSY_TIMEOUT_MS",
    "DEFAULT_PATH",
    "SCHEMA_VERSION",
    "Lease",
    "LedgerEntry",
    "LedgerOutcome",
    "MigrationSet",
    "Rows",
    "RunSummary",
    "SQLiteStore",
    "Store",
    "Synchronous",
    "Transaction",
    "Within",
    "applied_version",
    "apply_migrations",
    "check_synchronous",
    "enable_wal",
    "open_store",
    "project_ledger",
    "project_run",
]
