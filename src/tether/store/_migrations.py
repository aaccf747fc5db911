"""Versioned schema migrations of the SQLite store.

``PRAGMA user_version`` holds the number of migrations applied; each migration is
applied in its own transaction. Append new migrations; never edit an old one.
"""

from __future__ import annotations

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

SCHEMA_VERSION = len(MIGRATIONS)
