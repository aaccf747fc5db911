"""The embedded default store: one SQLite file in WAL mode, through apsw.

Each :meth:`SQLiteStore.append` is one ``BEGIN IMMEDIATE`` transaction holding the
events, their new blobs, and the run-table and tool-ledger projections, so a commit
point is all or nothing. Calls run on the caller's thread: a commit is short and
serialised by the file lock anyway, and a thread hop would cost more than it saves.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, cast

import apsw

from ..core import (
    STATUS_AFTER,
    ConcurrentWriteError,
    Event,
    EventType,
    RunNotFoundError,
    RunStatus,
    SchemaVersionError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
)
from ._blobs import blob_refs, decode, externalize, internalize
from ._migrations import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION
from ._protocol import LedgerEntry, RunSummary

Synchronous = Literal["FULL", "NORMAL"]
DEFAULT_PATH = Path(".tether") / "tether.db"

_RUN_COLUMNS = (
    "run_id, agent, status, task, created_at, updated_at, steps, last_seq, parent_run_id, "
    "input_tokens, output_tokens, cost_usd"
)


def _dumps(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:  # lone surrogates: keep them as JSON escapes
            text = json.dumps(value, separators=(",", ":"))
    return text


@contextmanager
def _translated(path: Path) -> Iterator[None]:
    """Turn apsw errors into Tether store errors that say what to do."""
    try:
        yield
    except (apsw.BusyError, apsw.LockedError) as e:
        raise StoreLockedError(
            f"the database {path} is locked by another process",
            hint="wait for the other process, or raise TETHER_BUSY_TIMEOUT_MS",
        ) from e
    except (apsw.NotADBError, apsw.CorruptError) as e:
        raise StoreCorruptError(
            f"{path} is not a valid SQLite database ({e})",
            hint="point --db / TETHER_DB at a Tether database, or restore it from a backup",
        ) from e
    except apsw.CantOpenError as e:
        raise StoreError(
            f"cannot open the database {path} ({e})",
            hint="check that the directory exists and is writable",
        ) from e


def _summary(row: Sequence[Any]) -> RunSummary:
    return RunSummary(
        run_id=row[0],
        agent=row[1],
        status=RunStatus(row[2]),
        task=row[3],
        created_at=row[4],
        updated_at=row[5],
        steps=row[6],
        last_seq=row[7],
        parent_run_id=row[8],
        input_tokens=row[9],
        output_tokens=row[10],
        cost_usd=row[11],
    )


class SQLiteStore:
    """A :class:`~tether.store.Store` in one SQLite file.

    Args:
        path: The database file; created with its directory if missing.
        synchronous: ``"FULL"`` (default) survives power loss; ``"NORMAL"`` survives
            process crashes only, and commits faster.
        busy_timeout_ms: How long to wait for another process's write lock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_PATH,
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout_ms: int = 5000,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise StoreError(
                f"synchronous must be FULL or NORMAL, not {synchronous!r}",
                hint="use TETHER_SYNCHRONOUS=FULL (default) or NORMAL",
            )
        self.path = Path(path)
        self.synchronous = synchronous
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _translated(self.path):
            self._db = apsw.Connection(str(self.path))
            self._db.set_busy_timeout(busy_timeout_ms)
            self._enable_wal(busy_timeout_ms / 1000)
            self._migrate()
            self._db.execute(f"PRAGMA synchronous={synchronous}")

    # -- schema ---------------------------------------------------------------------

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return cast(list[tuple[Any, ...]], self._db.execute(sql, args).fetchall())

    def _scalar(self, sql: str, *args: Any) -> Any:
        rows = self._rows(sql, args)
        return rows[0][0] if rows else None

    def _enable_wal(self, patience_s: float) -> None:
        """Switch the file to WAL (it stays so). SQLite does not wait on the busy timeout
        for this switch, so a process racing another one over a new file tries again."""
        deadline = time.monotonic() + patience_s
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except apsw.BusyError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def _check_version(self) -> int:
        # One statement, so one snapshot: another process may be migrating the file.
        ((version, app_id, tables),) = self._rows(
            "SELECT (SELECT user_version FROM pragma_user_version), "
            "(SELECT application_id FROM pragma_application_id), "
            "(SELECT count(*) FROM sqlite_master)"
        )
        if tables and app_id != APPLICATION_ID:
            raise StoreCorruptError(
                f"{self.path} is an SQLite database but not a Tether store",
                hint="point --db / TETHER_DB at a Tether database file",
            )
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{self.path} has schema version {version}, newer than this Tether "
                f"understands ({SCHEMA_VERSION})",
                hint="upgrade tether (pip install -U tether) to read this database",
            )
        return int(version)

    def _migrate(self) -> None:
        if self._check_version() == SCHEMA_VERSION:
            return
        # Read the version again inside the write transaction: two processes opening
        # a new file at once must not both apply the same migration.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for number in range(self._check_version(), SCHEMA_VERSION):
                self._db.execute(MIGRATIONS[number])
                self._db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                self._db.execute(f"PRAGMA user_version={number + 1}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # -- writing --------------------------------------------------------------------

    async def append(self, events: Sequence[Event]) -> None:
        if not events:
            return
        run_id = events[0].run_id
        first = events[0].seq
        for offset, event in enumerate(events):
            if event.run_id != run_id or event.seq != first + offset:
                raise StoreError("one append takes consecutive events of one run")
        with _translated(self.path):
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                self._write(db, events)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _write(self, db: apsw.Connection, events: Sequence[Event]) -> None:
        run_id = events[0].run_id
        found = self._rows("SELECT run_key, last_seq FROM runs WHERE run_id = ?", (run_id,))
        run_key, last = found[0] if found else (None, 0)
        if events[0].seq != last + 1:
            raise ConcurrentWriteError(
                f"run {run_id} is at seq {last}; refusing to append seq {events[0].seq}",
                hint="another process is writing this run; reload it before continuing",
                run_id=run_id,
            )
        if run_key is None:
            run_key = self._insert_run(db, events[0])
        blobs: dict[str, bytes] = {}
        rows = []
        for e in events:
            payload = _dumps(externalize(e.payload, blobs))
            rows.append((run_key, e.seq, e.type, e.step, e.ts, e.span_id, e.parent_span_id,
                         e.duration_ms, payload))
        if blobs:
            db.executemany(
                "INSERT OR IGNORE INTO blobs(hash, data) VALUES (?, ?)",
                [(bytes.fromhex(key), data) for key, data in blobs.items()],
            )
        db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)", rows)
        self._project(db, run_key, events)

    def _insert_run(self, db: apsw.Connection, first: Event) -> int:
        if first.type != EventType.RUN_STARTED:
            raise StoreError(
                f"run {first.run_id} does not exist; its first event must be run.started",
                run_id=first.run_id,
            )
        p = first.payload
        db.execute(
            "INSERT INTO runs(run_id, agent, parent_run_id, status, task, created_at, "
            "updated_at, last_seq) VALUES (?,?,?,?,?,?,?,0)",
            (first.run_id, p["agent"], p.get("parent_run_id"), RunStatus.RUNNING,
             p.get("task", ""), first.ts, first.ts),
        )
        return db.last_insert_rowid()

    def _project(self, db: apsw.Connection, run_key: int, events: Sequence[Event]) -> None:
        """Keep the run table and the tool ledger in step with the journal."""
        status: str | None = None
        steps = 0
        input_tokens = output_tokens = 0
        cost = 0.0
        for e in events:
            p = e.payload
            if e.type in STATUS_AFTER:
                status = STATUS_AFTER[e.type]
            elif e.type == EventType.MODEL_RESPONSE:
                steps = max(steps, e.step)
                usage = p.get("usage") or {}
                input_tokens += usage.get("input_tokens", 0)
                output_tokens += usage.get("output_tokens", 0)
                cost += p.get("cost_usd") or 0.0
            elif e.type == EventType.TOOL_INTENT:
                db.execute(
                    "INSERT INTO tool_ledger VALUES (?,?,?,?,?,'intent',?,NULL)",
                    (run_key, p["call_id"], p["tool"], e.step, p["idempotency_key"], e.seq),
                )
            elif e.type in (EventType.TOOL_RESULT, EventType.TOOL_ERROR):
                db.execute(
                    "UPDATE tool_ledger SET status = ?, result_seq = ? "
                    "WHERE run_key = ? AND call_id = ?",
                    ("done" if e.type == EventType.TOOL_RESULT else "error", e.seq, run_key,
                     p["call_id"]),
                )
        # Findings (the doctor's, appended after the run) are not the run's activity.
        active = [e.ts for e in events if e.type != EventType.FINDING]
        db.execute(
            "UPDATE runs SET last_seq = ?, updated_at = coalesce(?, updated_at), "
            "status = coalesce(?, status), steps = max(steps, ?), "
            "input_tokens = input_tokens + ?, output_tokens = output_tokens + ?, "
            "cost_usd = cost_usd + ? WHERE run_key = ?",
            (events[-1].seq, max(active, default=None), status, steps, input_tokens,
             output_tokens, cost, run_key),
        )

    # -- reading --------------------------------------------------------------------

    async def read(self, run_id: str, *, after_seq: int = 0) -> list[Event]:
        with _translated(self.path):
            rows = self._rows(
                "SELECT seq, type, step, ts, span_id, parent_span_id, duration_ms, payload "
                "FROM events WHERE run_key = (SELECT run_key FROM runs WHERE run_id = ?) "
                "AND seq > ? ORDER BY seq",
                (run_id, after_seq),
            )
            if not rows and after_seq == 0:
                await self.run(run_id)  # raises RunNotFoundError
            payloads = [json.loads(r[7]) for r in rows]
            refs: set[str] = set()
            for payload in payloads:
                blob_refs(payload, refs)
            blobs = self._blobs(refs)
        return [
            Event(run_id=run_id, seq=r[0], type=r[1], step=r[2], ts=r[3], span_id=r[4],
                  parent_span_id=r[5], duration_ms=r[6],
                  payload=internalize(p, blobs) if refs else p)
            for r, p in zip(rows, payloads, strict=True)
        ]

    def _blobs(self, refs: set[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        keys = [bytes.fromhex(ref) for ref in refs]
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for key, data in self._rows(
                f"SELECT hash, data FROM blobs WHERE hash IN ({marks})", chunk
            ):
                found[bytes(key).hex()] = decode(bytes(data))
        missing = refs - found.keys()
        if missing:
            raise StoreCorruptError(
                f"{len(missing)} referenced blobs are missing from {self.path}",
                hint="the database was damaged; restore it from a backup",
            )
        return found

    async def run(self, run_id: str) -> RunSummary:
        with _translated(self.path):
            rows = self._rows(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise RunNotFoundError(
                f"no run {run_id!r} in {self.path}",
                hint="list runs with `tether runs`, or pass the right --db",
            )
        return _summary(rows[0])

    async def runs(
        self,
        *,
        status: RunStatus | None = None,
        agent: str | None = None,
        since: float | None = None,
        parent_run_id: str | None = None,
        limit: int = 50,
    ) -> list[RunSummary]:
        clauses: list[str] = []
        args: list[Any] = []
        for column, op, value in (("status", "=", status), ("agent", "=", agent),
                                  ("created_at", ">=", since),
                                  ("parent_run_id", "=", parent_run_id)):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                args.append(str(value) if isinstance(value, RunStatus) else value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with _translated(self.path):
            rows = self._rows(
                f"SELECT {_RUN_COLUMNS} FROM runs {where} ORDER BY created_at DESC, run_id DESC "
                "LIMIT ?",
                (*args, limit),
            )
        return [_summary(r) for r in rows]

    async def ledger(self, run_id: str) -> list[LedgerEntry]:
        with _translated(self.path):
            rows = self._rows(
                "SELECT call_id, tool, step, idempotency_key, status, intent_seq, result_seq "
                "FROM tool_ledger WHERE run_key = (SELECT run_key FROM runs WHERE run_id = ?) "
                "ORDER BY intent_seq",
                (run_id,),
            )
        return [
            LedgerEntry(run_id=run_id, call_id=r[0], tool=r[1], step=r[2], idempotency_key=r[3],
                        status=r[4], intent_seq=r[5], result_seq=r[6])
            for r in rows
        ]

    def checkpoint(self) -> None:
        """Fold the WAL into the main file (used before measuring the file's size)."""
        with _translated(self.path):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def close(self) -> None:
        self._db.close()
