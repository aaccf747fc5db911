"""Open the store the environment points at."""

from __future__ import annotations

import os
from pathlib import Path

from ..core import ConfigurationError
from ._protocol import Store
from ._sqlite import DEFAULT_PATH, SQLiteStore


def open_store(location: str | os.PathLike[str] | None = None) -> Store:
    """Open a store: ``location``, else ``$TETHER_DB``, else ``./.tether/tether.db``.

    ``$TETHER_SYNCHRONOUS`` (``FULL`` or ``NORMAL``) sets SQLite's durability.
    """
    target = location if location is not None else os.environ.get("TETHER_DB") or DEFAULT_PATH
    text = str(target)
    if text.startswith(("postgres://", "postgresql://")):
        raise ConfigurationError(
            "the Postgres store is not available in this version",
            hint="use a SQLite file path for --db / TETHER_DB",
        )
    synchronous = os.environ.get("TETHER_SYNCHRONOUS", "FULL").upper()
    if synchronous not in ("FULL", "NORMAL"):
        raise ConfigurationError(
            f"TETHER_SYNCHRONOUS must be FULL or NORMAL, not {synchronous!r}",
            hint="unset TETHER_SYNCHRONOUS or set it to FULL or NORMAL",
        )
    busy = int(os.environ.get("TETHER_BUSY_TIMEOUT_MS", "5000"))
    return SQLiteStore(Path(text), synchronous=synchronous, busy_timeout_ms=busy)  # type: ignore[arg-type]
