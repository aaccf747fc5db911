"""The memory tables: the migration set ``"memory"``, and loading sqlite-vec.

The tables can live in the journal's own SQLite file. Their migrations are the named
set ``memory`` (``tether.store.MigrationSet``), tracked beside the journal's ``core``
set in ``tether_migrations`` and applied by ``tether.store.apply_migrations``: each in
its own ``BEGIN IMMEDIATE`` transaction that re-reads the version first, so two
processes opening one file cannot apply a migration twice.
Append new migrations; never edit an old one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import apsw

from ..store import MigrationSet, apply_migrations
from ..store import applied_version as store_applied_version
from ._errors import VectorExtensionError

#: The name of the memory tables' migration set, as the store records its version.
MIGRATION_SET = "memory"

MIGRATIONS: tuple[str, ...] = (
    # 1: memories, their vectors (float32 and sign bits), full-text index, metadata.
    """
    CREATE TABLE memory_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE memory_items (
        id            INTEGER PRIMARY KEY,
        handle        TEXT NOT NULL UNIQUE,
        text          TEXT NOT NULL,
        key           TEXT,
        kind          TEXT NOT NULL,
        ns_agent      TEXT NOT NULL,
        ns_user       TEXT NOT NULL,
        ns_thread     TEXT NOT NULL,
        ns_run        TEXT NOT NULL,
        metadata      TEXT NOT NULL,
        run_id        TEXT,
        step          INTEGER,
        seq           INTEGER,
        created_at    REAL NOT NULL,
        superseded_by TEXT,
        superseded_at REAL,
        text_hash     BLOB NOT NULL,
        changed_gen   INTEGER NOT NULL
    );
    CREATE INDEX memory_by_hash ON memory_items(text_hash) WHERE superseded_by IS NULL;
    CREATE INDEX memory_by_key ON memory_items(key) WHERE superseded_by IS NULL
        AND key IS NOT NULL;
    CREATE INDEX memory_by_gen ON memory_items(changed_gen);
    CREATE TABLE memory_vectors (
        id        INTEGER PRIMARY KEY,
        embedding BLOB NOT NULL,
        bits      BLOB NOT NULL
    );
    CREATE VIRTUAL TABLE memory_fts USING fts5(
        text, key, content='memory_items', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2'
    );
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


#: The memory tables' migration set (applied with the store's ``apply_migrations``).
MEMORY_MIGRATIONS = MigrationSet(name=MIGRATION_SET, migrations=MIGRATIONS)


def applied_version(db: apsw.Connection) -> int:
    """How many migrations of the ``memory`` set this file has."""
    return store_applied_version(db, MEMORY_MIGRATIONS)


def migrate(db: apsw.Connection, path: str) -> None:
    """Apply the missing migrations of the ``memory`` set, each in its own transaction."""
    apply_migrations(db, MEMORY_MIGRATIONS, path)


def vec_extension_path() -> str:
    """The sqlite-vec loadable library: ``$TETHER_SQLITE_VEC_PATH``, else the one the
    ``sqlite-vec`` package installs."""
    override = os.environ.get("TETHER_SQLITE_VEC_PATH")
    if override:
        return override
    try:
        import sqlite_vec
    except ImportError as e:
        raise VectorExtensionError(
            "the vector extension sqlite-vec is not installed, and memory search needs it",
            hint='pip install "tether[memory]" (it brings sqlite-vec==0.1.9), or set '
                 "TETHER_SQLITE_VEC_PATH to a vec0 library",
        ) from e
    return str(sqlite_vec.loadable_path())


def load_vec(db: apsw.Connection, path: str | None = None) -> str:
    """Load sqlite-vec into ``db``; return its version. Never degrades silently.

    Raises:
        VectorExtensionError: the library is missing or SQLite refuses it.
    """
    library = path or vec_extension_path()
    try:
        db.enable_load_extension(True)
        db.load_extension(library)
        db.enable_load_extension(False)
        rows: list[Any] = db.execute("SELECT vec_version()").fetchall()
    except apsw.Error as e:
        where = "TETHER_SQLITE_VEC_PATH" if os.environ.get("TETHER_SQLITE_VEC_PATH") else \
            "the sqlite-vec package"
        raise VectorExtensionError(
            f"SQLite could not load the vector extension {library!r} ({e})",
            hint=f'pip install --force-reinstall "sqlite-vec==0.1.9" (check {where}; it '
                 f"must be a vec0 library for this platform, {Path(library).suffix or 'no'} "
                 "suffix found)",
        ) from e
    return str(rows[0][0])
