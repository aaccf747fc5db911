"""Named, versioned sets of schema migrations (as in sqlite-utils' migrations).

Each package that keeps tables in a Tether SQLite file owns one
:class:`MigrationSet` (``core``: the journal; ``memory``: long-term memory), versioned
on its own. The table ``tether_migrations(name, version)`` records how many migrations
of each set a file has; :func:`apply_migrations` applies the missing ones, each in its
own ``BEGIN IMMEDIATE`` transaction that reads the version again first, so two
processes opening one file never apply a migration twice and a migration that fails
leaves the file at the one before. Append new migrations; never edit an old one.

The ``core`` set also keeps ``PRAGMA user_version`` equal to its version, as files
written before named sets recorded it there (only there: such a file is upgraded by
recording that version in ``tether_migrations`` on its first writable open), and so an
older Tether refuses a newer file instead of misreading it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apsw

from ..core import SchemaVersionError

#: Marks a file as a Tether database ("TETH").
APPLICATION_ID = 0x54455448

MIGRATIONS: tuple[str, ...] = (
    # 1: runs, events, blobs, tool ledger. Events and ledger rows refer to their run by
    # an integer key, not the 30-character run id: it is repeated in every row.
    """
    CREATE TABLE runs (
        run_key       INTEGER PRIMARY KEY,
        run_id        TEXT NOT NULL UNIQUE,
        agent         TEXT NOT NULL,
        parent_run_id TEXT,
        status        TEXT NOT NULL,
        task          TEXT NOT NULL,
        created_at    REAL NOT NULL,
        updated_at    REAL NOT NULL,
        last_seq      INTEGER NOT NULL,
        steps         INTEGER NOT NULL DEFAULT 0,
        input_tokens  INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd      REAL NOT NULL DEFAULT 0
    );
    CREATE INDEX runs_by_created ON runs(created_at);
    CREATE INDEX runs_by_parent ON runs(parent_run_id) WHERE parent_run_id IS NOT NULL;
    CREATE TABLE events (
        run_key        INTEGER NOT NULL,
        seq            INTEGER NOT NULL,
        type           TEXT NOT NULL,
        step           INTEGER NOT NULL,
        ts             REAL NOT NULL,
        span_id        TEXT,
        parent_span_id TEXT,
        duration_ms    REAL,
        payload        TEXT NOT NULL,
        PRIMARY KEY (run_key, seq)
    ) WITHOUT ROWID;
    CREATE TABLE blobs (
        hash BLOB PRIMARY KEY,
        data BLOB NOT NULL
    );
    CREATE TABLE tool_ledger (
        run_key         INTEGER NOT NULL,
        call_id         TEXT NOT NULL,
        tool            TEXT NOT NULL,
        step            INTEGER NOT NULL,
        idempotency_key TEXT NOT NULL,
        status          TEXT NOT NULL,
        intent_seq      INTEGER NOT NULL,
        result_seq      INTEGER,
        PRIMARY KEY (run_key, call_id)
    ) WITHOUT ROWID;
    """,
    # 2: one lease per run: who drives it, its fencing token, until when.
    """
    CREATE TABLE leases (
        run_key    INTEGER PRIMARY KEY,
        owner      TEXT NOT NULL,
        token      INTEGER NOT NULL,
        ttl_s      REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    """,
    # 3: the thread a run continues (``run.started``'s ``thread``), indexed, so the runs
    # of a thread are found without reading journals; filled for existing runs.
    """
    ALTER TABLE runs ADD COLUMN thread TEXT;
    UPDATE runs SET thread = (
        SELECT json_extract(e.payload, '$.thread') FROM events e
        WHERE e.run_key = runs.run_key AND e.seq = 1 AND e.type = 'run.started'
          AND json_type(e.payload, '$.thread') = 'text');
    CREATE INDEX runs_by_thread ON runs(thread, created_at) WHERE thread IS NOT NULL;
    """,
)

#: The schema version that added the lease table (older journals have no leases).
LEASES_SINCE = 2
#: The schema version that added the run table's ``thread`` column.
THREADS_SINCE = 3

#: The core schema version this release writes: one per core migration. A file of a
#: newer version is refused (``SchemaVersionError``); an older one is migrated when
#: opened writable.
SCHEMA_VERSION = len(MIGRATIONS)

#: The table that records each set's version.
MIGRATIONS_TABLE = "tether_migrations"


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationSet:
    """The migrations of one package's tables, versioned on their own.

    Args:
        name: The set's name in ``tether_migrations`` (``"core"``, ``"memory"``...).
        migrations: SQL scripts, in order; the set's version is how many a file has.
        user_version: Keep ``PRAGMA user_version`` equal to the version, and read it
            as the version of a file that has no row for the set (the ``core`` set).
        application_id: Mark the file with this ``PRAGMA application_id``.
    """

    name: str
    migrations: tuple[str, ...]
    user_version: bool = False
    application_id: int | None = None

    @property
    def version(self) -> int:
        """The version this Tether knows: the number of migrations."""
        return len(self.migrations)


#: The journal's set.
CORE_MIGRATIONS = MigrationSet(name="core", migrations=MIGRATIONS, user_version=True,
                    application_id=APPLICATION_ID)


def _scalar(db: apsw.Connection, sql: str, args: tuple[Any, ...] = ()) -> Any:
    rows = db.execute(sql, args).fetchall()
    return rows[0][0] if rows else None


def applied_version(db: apsw.Connection, migration_set: MigrationSet) -> int:
    """How many migrations of ``migration_set`` the file has (0 for none).

    Reads only: a file from before named sets has no ``tether_migrations`` table,
    and the ``core`` set's version is then its ``user_version``."""
    has_table = _scalar(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                            f"AND name = '{MIGRATIONS_TABLE}'")
    version = 0
    if has_table:
        version = int(_scalar(db, f"SELECT version FROM {MIGRATIONS_TABLE} WHERE name = ?",
                              (migration_set.name,)) or 0)
    if migration_set.user_version:
        version = max(version, int(_scalar(db, "PRAGMA user_version")))
    return version


def check_version(db: apsw.Connection, migration_set: MigrationSet, path: str) -> int:
    """The set's version in the file; a newer one than this Tether knows is refused.

    Raises:
        SchemaVersionError: The file has more migrations of the set than this Tether.
    """
    version = applied_version(db, migration_set)
    if version > migration_set.version:
        what = "schema" if migration_set.name == "core" else f"{migration_set.name} schema"
        raise SchemaVersionError(
            f"{path} has {what} version {version}, newer than this Tether understands "
            f"({migration_set.version})",
            hint="upgrade tether (pip install -U tether) to read this database",
        )
    return version


def _record(db: apsw.Connection, migration_set: MigrationSet, version: int) -> None:
    db.execute(f"INSERT INTO {MIGRATIONS_TABLE}(name, version) VALUES (?, ?) "
               "ON CONFLICT(name) DO UPDATE SET version = excluded.version",
               (migration_set.name, version))
    if migration_set.user_version:
        db.execute(f"PRAGMA user_version={version}")
    if migration_set.application_id is not None:
        db.execute(f"PRAGMA application_id={migration_set.application_id}")


def apply_migrations(db: apsw.Connection, migration_set: MigrationSet, path: str) -> int:
    """Bring ``migration_set`` in the file up to date; return how many were applied.

    Each migration runs in its own ``BEGIN IMMEDIATE`` transaction with the record of
    its version, after reading the version again under the write lock. A file that
    is up to date is only read.

    Raises:
        SchemaVersionError: The file is newer than this Tether (nothing is written).
    """
    recorded = _recorded(db, migration_set, path)
    if recorded == migration_set.version:
        return 0
    applied = 0
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
                       "(name TEXT PRIMARY KEY, version INTEGER NOT NULL) WITHOUT ROWID")
            version = check_version(db, migration_set, path)
            if version < migration_set.version:
                db.execute(migration_set.migrations[version])
                version += 1
                applied += 1
            _record(db, migration_set, version)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if version == migration_set.version:
            return applied


def _recorded(db: apsw.Connection, migration_set: MigrationSet, path: str) -> int | None:
    """The set's version as ``tether_migrations`` records it (None: not recorded, or
    ``user_version`` disagrees, so the file needs a write); checks it is not newer."""
    version = check_version(db, migration_set, path)
    has_table = _scalar(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                            f"AND name = '{MIGRATIONS_TABLE}'")
    if not has_table:
        return None
    row = _scalar(db, f"SELECT version FROM {MIGRATIONS_TABLE} WHERE name = ?",
                  (migration_set.name,))
    return version if row == version else None
