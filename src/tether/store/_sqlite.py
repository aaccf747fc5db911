"""The embedded default store: one SQLite file in WAL mode, through apsw.

Each write (:meth:`SQLiteStore.append`, :meth:`~SQLiteStore.acquire`, ...) is one
``BEGIN IMMEDIATE`` transaction holding the events, their new blobs, the run-table and
tool-ledger projections and the run's lease, so a commit point is all or nothing.
Reads need no transaction: events and blobs are only ever added, each in the
transaction of the events that refer to them. Both run on the event loop's thread
while the file is free and move to a worker thread to wait out another process's lock
(``_connection.py``).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import quote

import apsw

from ..core import (
    ConcurrentWriteError,
    ConfigurationError,
    Event,
    LeaseLostError,
    RunLeasedError,
    RunNotFoundError,
    RunStatus,
    SchemaVersionError,
    StoreCorruptError,
    StoreError,
    StoreIOError,
    StoreNotFoundError,
    StoreReadOnlyError,
    UsageError,
)
from ._blobs import blob_refs, decode, internalize
from ._connection import Connection
from ._faults import read_only, translated
from ._journal import RUN_COLUMNS, RUN_COLUMNS_THREAD, insert_events, summary
from ._migrations import (
    APPLICATION_ID,
    CORE_MIGRATIONS,
    LEASES_SINCE,
    SCHEMA_VERSION,
    THREADS_SINCE,
    apply_migrations,
)
from ._protocol import Lease, LedgerEntry, RunSummary, Within

#: SQLite's ``synchronous`` settings a Tether file may use: ``FULL`` survives power loss,
#: ``NORMAL`` only process crashes (and commits faster).
Synchronous = Literal["FULL", "NORMAL"]

#: Where a store is opened when neither ``location`` nor ``$TETHER_DB`` says: relative
#: to the working directory.
DEFAULT_PATH = Path(".tether") / "tether.db"
#: How long a write waits for another process's lock before ``StoreLockedError``.
DEFAULT_BUSY_TIMEOUT_MS = 30_000


#: A run's key, last seq and lease, on every write. Scalar subqueries: SQLite runs this
#: in a third of the time of the equivalent LEFT JOIN (the hot path of every commit).
#: The row's task is read as '': an append never rewrites it, and reading a long task
#: on every commit made appends cost with its length.
_LOOKUP = (
    "SELECT run_key, last_seq, "
    "(SELECT owner FROM leases l WHERE l.run_key = runs.run_key), "
    "(SELECT token FROM leases l WHERE l.run_key = runs.run_key), "
    "(SELECT expires_at FROM leases l WHERE l.run_key = runs.run_key), "
    + RUN_COLUMNS_THREAD.replace(" task,", " '' AS task,", 1) + " FROM runs WHERE run_id = ?"
)


def check_synchronous(value: object) -> Synchronous:
    """``value`` as SQLite's ``synchronous`` setting of a Tether file (either case):
    the one check for the journal, the memory store and ``$TETHER_SYNCHRONOUS``.

    Raises:
        ConfigurationError: Not ``FULL`` or ``NORMAL``.
    """
    mode = value.upper() if isinstance(value, str) else value
    if mode == "FULL" or mode == "NORMAL":
        return mode
    raise ConfigurationError(
        f"synchronous must be FULL or NORMAL, not {value!r}",
        hint="set TETHER_SYNCHRONOUS (or synchronous=) to FULL (default) or NORMAL",
    )


def _rows(db: apsw.Connection, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    return cast(list[tuple[Any, ...]], db.execute(sql, args).fetchall())


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates: SQLite stores UTF-8 only
        return False
    return True


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def enable_wal(db: apsw.Connection, patience_s: float) -> None:
    """Switch a file to WAL (it stays so). SQLite does not wait on the busy timeout for
    this switch, so a process racing another one over a new file tries again."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except apsw.BusyError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def not_found(path: Path, why: str = "") -> StoreNotFoundError:
    return StoreNotFoundError(
        f"no Tether database at {path}{why}",
        hint="check --db / TETHER_DB (nothing was created)",
    )


class SQLiteStore:
    """A :class:`~tether.store.Store` in one SQLite file.

    Args:
        path: The database file; created with its directory if missing (unless
            ``readonly`` or ``create=False``).
        synchronous: ``"FULL"`` (default) survives power loss; ``"NORMAL"`` survives
            process crashes only, and commits faster.
        busy_timeout_ms: How long a read or write waits for another process's lock
            (retrying with backoff, off the event loop) before ``StoreLockedError``.
        readonly: Open for inspection: never writes, creates or migrates anything;
            works on a read-only file or mount and on a copy without its ``-wal``.
            A missing file is ``StoreNotFoundError``; writes are ``StoreReadOnlyError``.
        create: With ``False``, a missing file is ``StoreNotFoundError`` instead of
            a new, empty store.

    Raises:
        ConfigurationError: A bad ``synchronous`` or ``busy_timeout_ms``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_PATH,
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        readonly: bool = False,
        create: bool = True,
    ) -> None:
        synchronous = check_synchronous(synchronous)
        if isinstance(busy_timeout_ms, bool) or not isinstance(busy_timeout_ms, int) \
                or busy_timeout_ms < 0:
            raise ConfigurationError(
                f"busy_timeout_ms must be a whole number of milliseconds >= 0, "
                f"not {busy_timeout_ms!r}",
                hint="set TETHER_BUSY_TIMEOUT_MS (or busy_timeout_ms=), e.g. 30000",
            )
        self.path = Path(path)
        self.synchronous = synchronous
        self.readonly = readonly
        if readonly:
            db = self._open_readonly(busy_timeout_ms)
        else:
            db = self._open_writable(busy_timeout_ms, create=create)
        self._conn = Connection(db, self.path, busy_timeout_ms)

    # -- opening --------------------------------------------------------------------

    def _open_writable(self, busy_timeout_ms: int, *, create: bool) -> apsw.Connection:
        directory = self.path.parent
        if self.path.exists():
            writable = os.access(self.path, os.W_OK)
        elif not create:
            raise not_found(self.path)
        else:
            with translated(self.path):
                directory.mkdir(parents=True, exist_ok=True)
            writable = True
        if not (writable and os.access(directory, os.W_OK)):
            raise read_only(self.path, "the file or its directory is read-only "
                                       "(permissions or a read-only mount)")
        with translated(self.path):
            db = apsw.Connection(str(self.path))
            try:
                db.set_busy_timeout(busy_timeout_ms)
                enable_wal(db, busy_timeout_ms / 1000)
                self._migrate(db)
                db.execute(f"PRAGMA synchronous={self.synchronous}")
                db.set_busy_timeout(0)  # waits happen in Connection, off the event loop
            except BaseException:
                db.close()
                raise
        self._leases = True
        self._columns = RUN_COLUMNS_THREAD
        return db

    def _open_readonly(self, busy_timeout_ms: int) -> apsw.Connection:
        if not self.path.exists():
            raise not_found(self.path)
        if not self.path.is_file():
            raise not_found(self.path, " (it is not a file)")
        *others, last = self._readonly_uris()
        for uri in others:
            try:
                return self._open_uri(uri, busy_timeout_ms)
            except StoreIOError:  # cannot open this way: try the next
                pass
        return self._open_uri(last, busy_timeout_ms)

    def _open_uri(self, uri: str, busy_timeout_ms: int) -> apsw.Connection:
        with translated(self.path):
            db = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
            try:
                db.set_busy_timeout(busy_timeout_ms)
                version = self._check_version(db, readonly=True)
                db.set_busy_timeout(0)
            except BaseException:
                db.close()
                raise
        self._leases = version >= LEASES_SINCE
        # a read-only look at a journal from before the thread column
        self._columns = RUN_COLUMNS_THREAD if version >= THREADS_SINCE else RUN_COLUMNS
        return db

    def _readonly_uris(self) -> list[str]:
        """How to open the file without writing: ``mode=ro``, which needs a ``-shm`` file
        (SQLite creates it where the directory is writable); else ``immutable=1``, which
        needs none but does not read the ``-wal`` file, so only when that is empty."""
        path = self.path.resolve()
        uri = f"file:{quote(str(path))}?mode=ro"
        if os.access(path.parent, os.W_OK):
            return [uri]
        wal = Path(f"{path}-wal")
        shm = Path(f"{path}-shm")
        uris = [uri] if wal.exists() and shm.exists() else []
        if not wal.exists() or wal.stat().st_size == 0:
            uris.append(uri + "&immutable=1")
        if not uris:
            raise StoreReadOnlyError(
                f"{self.path} has commits in {wal.name} that SQLite cannot read without "
                f"a {shm.name} file, and its directory is read-only",
                hint=f"copy {path.name} with {wal.name} to a writable directory and "
                     "open the copy",
            )
        return uris

    def _check_version(self, db: apsw.Connection, *, readonly: bool = False) -> int:
        # One statement, so one snapshot: another process may be migrating the file.
        ((version, app_id, tables),) = _rows(
            db,
            "SELECT (SELECT user_version FROM pragma_user_version), "
            "(SELECT application_id FROM pragma_application_id), "
            "(SELECT count(*) FROM sqlite_master)",
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
        if readonly and version == 0:
            raise StoreNotFoundError(
                f"no Tether database at {self.path} (the file is an empty database)",
                hint="check --db / TETHER_DB; if the file is a copy, copy its -wal file "
                     "with it (or checkpoint before copying)",
            )
        return int(version)

    def _migrate(self, db: apsw.Connection) -> None:
        self._check_version(db)  # a Tether file (or a new one), not a newer one
        apply_migrations(db, CORE_MIGRATIONS, str(self.path))

    # -- writing --------------------------------------------------------------------

    def _writable(self, events: Sequence[Event]) -> None:
        if self.readonly:
            raise read_only(self.path, "the store was opened read-only")
        run_id = events[0].run_id
        first = events[0].seq
        for offset, event in enumerate(events):
            if event.run_id != run_id or event.seq != first + offset:
                raise StoreError("one append takes consecutive events of one run")

    async def append(
        self, events: Sequence[Event], *, lease: Lease | None = None,
        within: Within | None = None,
    ) -> None:
        """See :meth:`Store.append`.

        Args:
            events: Consecutive events of one run, the first following its last
                committed ``seq`` (else ``ConcurrentWriteError``, nothing written).
            lease: The run's lease, checked and extended in the same transaction
                (``LeaseLostError`` if another process took the run over).
            within: Called with the connection inside the append's transaction, after
                the lease and before ``events`` are written; it may write rows of its
                own (a memory's) and returns further events of the run, numbered to
                follow ``events``, committed with them: all commit or nothing does. It
                may be called again if the transaction is retried. With no ``events``,
                ``lease`` names the run.
        """
        if not events and within is None:
            return
        if events:
            self._writable(events)
        elif lease is None:
            raise UsageError("an append with no events needs the run's lease",
                             hint="pass lease=, or events")
        run_id = events[0].run_id if events else cast(Lease, lease).run_id
        if lease is not None and lease.run_id != run_id:
            raise UsageError(f"the lease is for run {lease.run_id}, the events for "
                             f"{run_id}")
        await self._conn.run(partial(self._write, events=events, lease=lease, within=within,
                                     run_id=run_id), write=True)

    async def acquire(
        self, events: Sequence[Event], *, owner: str, ttl_s: float, takeover: str | None = None
    ) -> Lease:
        """See :meth:`Store.acquire`: commit ``events`` and take the run's lease in one
        ``BEGIN IMMEDIATE`` transaction.

        Raises:
            ConfigurationError: ``owner`` is not a non-empty text, or ``ttl_s`` not a
                positive, finite number of seconds.
            StoreReadOnlyError: The store was opened ``readonly``.
            RunLeasedError: Another owner's lease is live; nothing is written.
            ConcurrentWriteError: ``seq`` does not follow the run's last one.
        """
        if not events:
            raise UsageError("acquire needs the events that start or resume the run")
        if not isinstance(owner, str) or not owner or not _encodable(owner):
            raise ConfigurationError(f"a lease's owner must be a non-empty text, not {owner!r}",
                                     hint="pass owner='host:pid:random'")
        if not (isinstance(ttl_s, int | float) and math.isfinite(ttl_s) and ttl_s > 0):
            raise ConfigurationError(f"a lease's ttl_s must be a positive number of "
                                     f"seconds, not {ttl_s!r}", hint="e.g. ttl_s=30")
        self._writable(events)
        taken = await self._conn.run(
            partial(self._write, events=events, take=(owner, float(ttl_s)), takeover=takeover),
            write=True)
        return cast(Lease, taken)

    def _write(
        self, db: apsw.Connection, *, events: Sequence[Event], lease: Lease | None = None,
        take: tuple[str, float] | None = None, takeover: str | None = None,
        within: Within | None = None, run_id: str | None = None,
    ) -> Lease | None:
        run_id = run_id or events[0].run_id
        found = _rows(db, _LOOKUP, (run_id,))
        run_key, last, holder, token, expires = found[0][:5] if found else (None, 0, None, 0, 0.0)
        previous = summary(found[0][5:]) if found else None
        now = time.time()  # read holding the write lock: no other commit comes between
        if lease is not None:
            if token != lease.token:
                raise self._lost(lease, holder, token)
            db.execute("UPDATE leases SET expires_at = ? WHERE run_key = ?",
                       (now + lease.ttl_s, run_key))
        elif (holder is not None and expires > now and holder != takeover
              and (take is None or take[0] != holder)):
            raise RunLeasedError(
                f"run {run_id} is being driven by {holder} (lease {token}, expires "
                f"{_when(expires)}, in {expires - now:.1f} s)",
                hint="wait for that process to finish, or stop it (if it died, its lease "
                     "lapses at that time); nothing was written: a refusal, not data loss",
                run_id=run_id, owner=holder, expires_at=expires,
            )
        if within is not None:
            events = [*events, *within(db)]
            if not events:
                return None
            self._writable(events)
        if events[0].seq != last + 1:
            raise ConcurrentWriteError(
                f"run {run_id} is at seq {last}; refusing to append seq {events[0].seq}",
                hint="another process is writing this run; reload it before continuing",
                run_id=run_id,
            )
        run_key = insert_events(db, run_key, previous, events)
        if take is None:
            return None
        owner, ttl_s = take
        ((new_token,),) = _rows(
            db,
            "INSERT INTO leases(run_key, owner, token, ttl_s, expires_at) VALUES (?,?,1,?,?) "
            "ON CONFLICT(run_key) DO UPDATE SET owner = excluded.owner, "
            "token = token + 1, ttl_s = excluded.ttl_s, expires_at = excluded.expires_at "
            "RETURNING token",
            (run_key, owner, ttl_s, now + ttl_s),
        )
        return Lease(run_id=run_id, owner=owner, token=new_token, ttl_s=ttl_s,
                     expires_at=now + ttl_s)

    def _lost(self, lease: Lease, holder: str | None, token: int | None) -> LeaseLostError:
        now = f"{holder} holds lease {token}" if holder else "it has no lease"
        return LeaseLostError(
            f"this process ({lease.owner}) lost run {lease.run_id}: its lease "
            f"{lease.token} was taken over ({now})",
            hint="stop driving the run here: another process continues it, and nothing "
                 "this one tried to write was committed (see `tether show`)",
            run_id=lease.run_id,
        )

    async def renew(self, lease: Lease) -> None:
        """See :meth:`Store.renew`: the new expiry is this host's wall clock now plus
        ``lease.ttl_s`` seconds.

        Raises:
            LeaseLostError: The run's lease has another token now (taken over).
            StoreReadOnlyError: The store was opened ``readonly``.
        """
        if self.readonly:
            raise read_only(self.path, "the store was opened read-only")

        def work(db: apsw.Connection) -> None:
            found = _rows(db, "SELECT l.owner, l.token FROM leases l JOIN runs r "
                              "ON r.run_key = l.run_key WHERE r.run_id = ?", (lease.run_id,))
            holder, token = found[0] if found else (None, None)
            if token != lease.token:
                raise self._lost(lease, holder, token)
            db.execute("UPDATE leases SET expires_at = ? WHERE run_key = "
                       "(SELECT run_key FROM runs WHERE run_id = ?)",
                       (time.time() + lease.ttl_s, lease.run_id))

        await self._conn.run(work, write=True)

    async def release(self, lease: Lease) -> None:
        """See :meth:`Store.release`: the lease expires now, so the next
        :meth:`acquire` takes the run without waiting; a lease taken over since (another
        token) is left alone. Raises ``StoreReadOnlyError`` on a ``readonly`` store."""
        if self.readonly:
            raise read_only(self.path, "the store was opened read-only")
        await self._conn.run(lambda db: db.execute(
            "UPDATE leases SET expires_at = 0 WHERE token = ? AND run_key = "
            "(SELECT run_key FROM runs WHERE run_id = ?)", (lease.token, lease.run_id)),
            write=True)

    # -- reading --------------------------------------------------------------------

    async def lease(self, run_id: str) -> Lease | None:
        """See :meth:`Store.lease`: the stored lease, live or not (compare
        ``expires_at`` with ``time.time()``); None for a run that never had one, an
        unknown run, or a journal written before leases."""
        if not self._leases:  # a read-only look at a journal from before leases
            return None
        rows = await self._conn.run(lambda db: _rows(
            db, "SELECT l.owner, l.token, l.ttl_s, l.expires_at FROM leases l JOIN runs r "
                "ON r.run_key = l.run_key WHERE r.run_id = ?", (run_id,)), write=False)
        if not rows:
            return None
        owner, token, ttl_s, expires_at = rows[0]
        return Lease(run_id=run_id, owner=owner, token=token, ttl_s=ttl_s,
                     expires_at=expires_at)

    async def read(self, run_id: str, *, after_seq: int = 0) -> list[Event]:
        """See :meth:`Store.read`: payloads as journaled (redacted, secrets sealed), with
        large values moved to blobs put back.

        Raises:
            RunNotFoundError: No run ``run_id`` in this file.
            StoreCorruptError: A blob an event refers to is missing.
        """
        rows, payloads, blobs = await self._conn.run(
            partial(self._read, run_id=run_id, after_seq=after_seq), write=False)
        return [
            Event(run_id=run_id, seq=r[0], type=r[1], step=r[2], ts=r[3], span_id=r[4],
                  parent_span_id=r[5], duration_ms=r[6],
                  payload=internalize(p, blobs) if blobs else p)
            for r, p in zip(rows, payloads, strict=True)
        ]

    def _read(
        self, db: apsw.Connection, *, run_id: str, after_seq: int
    ) -> tuple[list[tuple[Any, ...]], list[Any], dict[str, str]]:
        rows = _rows(
            db,
            "SELECT seq, type, step, ts, span_id, parent_span_id, duration_ms, payload "
            "FROM events WHERE run_key = (SELECT run_key FROM runs WHERE run_id = ?) "
            "AND seq > ? ORDER BY seq",
            (run_id, after_seq),
        )
        if not rows and after_seq == 0:
            self._summary(db, run_id)  # raises RunNotFoundError
        payloads = [json.loads(r[7]) for r in rows]
        for r, payload in zip(rows, payloads, strict=True):
            if not isinstance(payload, dict):  # every reader walks payloads as objects
                raise StoreCorruptError(
                    f"event {r[0]} ({r[1]}) of run {run_id} has a payload that is not "
                    f"a JSON object ({type(payload).__name__})",
                    hint="the journal was damaged or written by an incompatible tool; "
                         "see docs/journal.md for the payload of each event")
        refs: set[str] = set()
        for payload in payloads:
            blob_refs(payload, refs)
        return rows, payloads, self._blobs(db, refs) if refs else {}

    def _blobs(self, db: apsw.Connection, refs: set[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        keys = [bytes.fromhex(ref) for ref in refs]
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for key, data in _rows(
                db, f"SELECT hash, data FROM blobs WHERE hash IN ({marks})", chunk
            ):
                found[bytes(key).hex()] = decode(bytes(data))
        missing = refs - found.keys()
        if missing:
            raise StoreCorruptError(
                f"{len(missing)} referenced blobs are missing from {self.path}",
                hint="the database was damaged; restore it from a backup",
            )
        return found

    def _summary(self, db: apsw.Connection, run_id: str) -> RunSummary:
        rows = _rows(db, f"SELECT {self._columns} FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise RunNotFoundError(
                f"no run {run_id!r} in {self.path}",
                hint="list runs with `tether runs`, or pass the right --db",
            )
        return summary(rows[0])

    async def run(self, run_id: str) -> RunSummary:
        """See :meth:`Store.run`: the run-table row (status, counts, cost) kept with
        every commit. Raises ``RunNotFoundError`` for an id not in this file."""
        return await self._conn.run(partial(self._summary, run_id=run_id), write=False)

    async def match_run_ids(self, prefix: str, *, limit: int = 6) -> list[str]:
        """See :meth:`Store.match_run_ids`: what the CLI uses to expand a short run id;
        more than one match means the prefix is ambiguous."""
        # A range on the unique index: prefix <= run_id < prefix + the highest character.
        rows = await self._conn.run(lambda db: _rows(
            db, "SELECT run_id FROM runs WHERE run_id >= ? AND run_id < ? ORDER BY run_id "
                "LIMIT ?", (prefix, prefix + "\U0010ffff", limit)), write=False)
        return [r[0] for r in rows]

    async def runs(
        self,
        *,
        status: RunStatus | None = None,
        agent: str | None = None,
        since: float | None = None,
        parent_run_id: str | None = None,
        thread: str | None = None,
        limit: int = 50,
    ) -> list[RunSummary]:
        """See :meth:`Store.runs`: newest first (``created_at``, seconds since the
        epoch; ``since`` keeps runs created at or after it), at most ``limit``. Filters
        left None match everything; ``thread`` on a journal from before threads finds
        nothing."""
        clauses: list[str] = []
        args: list[Any] = []
        if thread is not None and self._columns == RUN_COLUMNS:
            return []  # a journal from before threads were recorded in the run table
        for column, op, value in (("status", "=", status), ("agent", "=", agent),
                                  ("created_at", ">=", since),
                                  ("parent_run_id", "=", parent_run_id),
                                  ("thread", "=", thread)):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                args.append(str(value) if isinstance(value, RunStatus) else value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._conn.run(lambda db: _rows(
            db, f"SELECT {self._columns} FROM runs {where} ORDER BY created_at DESC, "
                "run_id DESC LIMIT ?", (*args, limit)), write=False)
        return [summary(r) for r in rows]

    async def ledger(self, run_id: str) -> list[LedgerEntry]:
        """See :meth:`Store.ledger`: one entry per tool call with an intent, in intent
        order; an unknown run has none (an empty list, not an error)."""
        rows = await self._conn.run(lambda db: _rows(
            db, "SELECT call_id, tool, step, idempotency_key, status, intent_seq, result_seq "
                "FROM tool_ledger WHERE run_key = (SELECT run_key FROM runs WHERE run_id = ?) "
                "ORDER BY intent_seq", (run_id,)), write=False)
        return [
            LedgerEntry(run_id=run_id, call_id=r[0], tool=r[1], step=r[2], idempotency_key=r[3],
                        status=r[4], intent_seq=r[5], result_seq=r[6])
            for r in rows
        ]

    def checkpoint(self) -> None:
        """Fold the WAL into the main file (used before measuring the file's size)."""
        self._conn.run_now(lambda db: db.execute("PRAGMA wal_checkpoint(TRUNCATE)"))

    @property
    def busy_attempts(self) -> int:
        """How many attempts so far found the file locked by another process."""
        return self._conn.busy_attempts

    @property
    def longest_lock_wait_s(self) -> float:
        """The longest any call so far waited for another process's lock (seconds)."""
        return self._conn.longest_wait_s

    async def close(self) -> None:
        """Close the database connection; the store cannot be used afterwards."""
        self._conn.close()
