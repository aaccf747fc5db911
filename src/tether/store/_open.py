"""Open the store the environment points at."""

from __future__ import annotations

import os
from pathlib import Path

from ..core import ConfigurationError
from ._protocol import Store
from ._sqlite import DEFAULT_BUSY_TIMEOUT_MS, DEFAULT_PATH, SQLiteStore, check_synchronous


def open_store(
    location: str | os.PathLike[str] | None = None, *, readonly: bool = False,
    create: bool = True,
) -> Store:
    """Open a store: ``location``, else ``$TETHER_DB``, else ``./.tether/tether.db``.

    ``$TETHER_SYNCHRONOUS`` (``FULL`` or ``NORMAL``) sets SQLite's durability;
    ``$TETHER_BUSY_TIMEOUT_MS`` how long to wait for another process's lock (30000).

    Args:
        location: A SQLite file's path (a ``postgres://`` URL is refused in this
            version with ``ConfigurationError``).
        readonly: Open for inspection only (see :class:`SQLiteStore`); a missing file
            is ``StoreNotFoundError``, never a new one.
        create: With ``False``, a missing file is ``StoreNotFoundError``.
    """
    target = location if location is not None else os.environ.get("TETHER_DB") or DEFAULT_PATH
    text = str(target)
    if text.startswith(("postgres://", "postgresql://")):
        raise ConfigurationError(
            "the Postgres store is not available in this version",
            hint="use a SQLite file path for --db / TETHER_DB",
        )
    synchronous = check_synchronous(os.environ.get("TETHER_SYNCHRONOUS", "FULL"))
    busy = os.environ.get("TETHER_BUSY_TIMEOUT_MS", str(DEFAULT_BUSY_TIMEOUT_MS))
    try:
        busy_ms = int(busy)
    except ValueError:
        raise ConfigurationError(
            f"TETHER_BUSY_TIMEOUT_MS must be a whole number of milliseconds, not {busy!r}",
            hint="unset it (30000) or set e.g. TETHER_BUSY_TIMEOUT_MS=60000",
        ) from None
    return SQLiteStore(Path(text), synchronous=synchronous,
                       busy_timeout_ms=busy_ms, readonly=readonly, create=create)
