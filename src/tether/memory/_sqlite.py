"""The long-term store on SQLite: FTS5 for BM25, float vectors with sqlite-vec, a
binary prefilter in process, reciprocal rank fusion, dedup and supersession.

Two ways to write: :meth:`SQLiteMemoryStore.write_in` writes with a given apsw
connection inside a transaction the caller opened (so the integration commits a
memory's rows with its ``memory.write`` event), and :meth:`SQLiteMemoryStore.write`
opens its own ``BEGIN IMMEDIATE`` transaction. Embedding happens before, in
:meth:`SQLiteMemoryStore.prepare`, never inside a transaction.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import apsw
import numpy as np
from numpy.typing import NDArray

from ..core import Clock, StoreLockedError, SystemClock, UsageError, new_id
from ..store import check_synchronous, enable_wal
from ._embed import Embedder, MiniLMEmbedder
from ._errors import EmbedderMismatchError, MemoryStoreError
from ._index import BitIndex, sign_bits
from ._policy import MemoryPolicy
from ._schema import load_vec, migrate
from ._search import fuse, keyword_coverage
from ._text import (
    content_tokens,
    fts_query,
    fts_terms,
    jaccard,
    shared_opening,
    text_hash,
    valid_text,
)
from ._types import Hit, Memory, Namespace, Provenance, WriteOutcome

_COLUMNS = ("id, handle, text, key, kind, ns_agent, ns_user, ns_thread, ns_run, metadata, "
            "run_id, step, seq, created_at, superseded_by, superseded_at")
FORGOTTEN = "forgotten"


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedMemory:
    """A memory ready to write: its handle is chosen and its text embedded."""

    handle: str
    text: str
    namespace: Namespace
    vector: NDArray[np.float32]
    key: str | None = None
    kind: str = "fact"
    metadata: Mapping[str, Any] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)


def _memory(row: Sequence[Any]) -> Memory:
    return Memory(
        handle=row[1], text=row[2], key=row[3], kind=row[4],
        namespace=Namespace(agent=row[5] or None, user=row[6] or None,
                            thread=row[7] or None, run=row[8] or None),
        metadata=json.loads(row[9]),
        provenance=Provenance(run_id=row[10], step=row[11], seq=row[12]),
        created_at=row[13], superseded_by=row[14], superseded_at=row[15],
    )


class SQLiteMemoryStore:
    """Long-term memory in a SQLite file (which may be the journal's file).

    Args:
        path: The database file, created if missing.
        embedder: Defaults to :class:`MiniLMEmbedder`. A file remembers the embedder
            that wrote it and refuses another (:class:`EmbedderMismatchError`).
        policy: Duplicate, supersession and relevance thresholds.
        clock: Timestamps (``created_at``, ``superseded_at``).
        vec_path: The sqlite-vec library; defaults to the ``sqlite-vec`` package's.
        synchronous: ``"FULL"`` or ``"NORMAL"``, as for the journal.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        embedder: Embedder | None = None,
        policy: MemoryPolicy | None = None,
        clock: Clock | None = None,
        vec_path: str | None = None,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        busy_timeout_ms: int = 5000,
    ) -> None:
        synchronous = check_synchronous(synchronous)
        self.path = Path(path)
        self.embedder: Embedder = embedder if embedder is not None else MiniLMEmbedder()
        self.policy = policy or MemoryPolicy()
        self.clock: Clock = clock or SystemClock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._translated():
            self._db = apsw.Connection(str(self.path))
            self._db.set_busy_timeout(busy_timeout_ms)
            self.vec_version = load_vec(self._db, vec_path)
            enable_wal(self._db, busy_timeout_ms / 1000)
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            # rescoring reads a few hundred random vector rows per search: map the file
            # and keep a larger page cache rather than a syscall per page
            self._db.execute("PRAGMA mmap_size=1073741824")
            self._db.execute("PRAGMA cache_size=-65536")
            _mark_tether_file(self._db, self.path)
            migrate(self._db, str(self.path))
            self._check_embedder()
        self._index = BitIndex(self.embedder.dim)

    # -- plumbing -------------------------------------------------------------------

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except (apsw.BusyError, apsw.LockedError) as e:
            raise StoreLockedError(f"the memory database {self.path} is locked",
                                   hint="wait for the other process, or raise busy_timeout_ms"
                                   ) from e
        except apsw.Error as e:
            raise MemoryStoreError(f"memory store {self.path}: {e}",
                                   hint="check the file is a Tether database") from e

    def _check_embedder(self) -> None:
        want = {"embedder": self.embedder.name, "dim": str(self.embedder.dim)}
        self._db.execute("BEGIN IMMEDIATE")
        try:
            meta: list[Any] = self._db.execute("SELECT name, value FROM memory_meta").fetchall()
            have = {str(r[0]): str(r[1]) for r in meta}
            if "embedder" not in have:
                self._db.executemany("INSERT INTO memory_meta(name, value) VALUES (?, ?)",
                                     [*want.items(), ("generation", "0")])
        finally:
            self._db.execute("COMMIT")
        for name, value in want.items():
            if name in have and have[name] != value:
                raise EmbedderMismatchError(
                    f"{self.path} holds memories embedded by {have['embedder']} "
                    f"({have['dim']} dimensions), not {want['embedder']} ({want['dim']})",
                    hint="open it with the same embedder, or use another file")

    @property
    def connection(self) -> apsw.Connection:
        """The store's own connection (sqlite-vec loaded)."""
        return self._db

    def close(self) -> None:
        """Close the store's connection; the store cannot be used afterwards."""
        self._db.close()

    # -- writing --------------------------------------------------------------------

    def prepare(
        self,
        text: str,
        *,
        namespace: Namespace,
        key: str | None = None,
        kind: str = "fact",
        metadata: Mapping[str, Any] | None = None,
        provenance: Provenance | None = None,
        vector: NDArray[np.float32] | None = None,
        handle: str | None = None,
    ) -> PreparedMemory:
        """Embed ``text`` (unless ``vector`` is given) and choose the memory's handle."""
        if not text.strip():
            raise UsageError("a memory needs non-empty text", hint="pass the fact to remember")
        text, key = valid_text(text), None if key is None else valid_text(key)
        if vector is None:
            vector = self.embedder.embed([text])[0]
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vec.shape[0] != self.embedder.dim:
            raise EmbedderMismatchError(
                f"a vector of {vec.shape[0]} values for a store of {self.embedder.dim}",
                hint="embed with the store's embedder")
        json.dumps(metadata or {})  # fail here, not inside the transaction
        return PreparedMemory(handle=handle or new_id("mem_"), text=text, namespace=namespace,
                              vector=vec, key=key, kind=kind, metadata=dict(metadata or {}),
                              provenance=provenance or Provenance())

    def write(self, item: PreparedMemory) -> WriteOutcome:
        """Write ``item`` in a transaction of its own."""
        with self._translated():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                outcome = self.write_in(self._db, item)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return outcome

    def write_many(self, items: Sequence[PreparedMemory], *, check_similar: bool = False
                   ) -> list[WriteOutcome]:
        """Write many memories in one transaction (imports, restores, benchmarks).

        Exact duplicates and keys are still checked; the similarity checks (near
        duplicates, keyless supersession) only with ``check_similar``, as they search
        committed memories and cost a scan each.
        """
        with self._translated():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                outcomes = [self.write_in(self._db, item, check_similar=check_similar)
                            for item in items]
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return outcomes

    def write_in(self, db: apsw.Connection, item: PreparedMemory, *,
                 check_similar: bool = True) -> WriteOutcome:
        """Write ``item`` with ``db``, inside the transaction the caller has open.

        ``db`` may be another connection to the same file (the journal's): the rows
        then commit or roll back with the caller's events. It needs no extension.
        Duplicates by text and key are found in the open transaction too; similar
        memories are searched among committed ones.

        Raises:
            UsageError: no transaction is open on ``db``.
        """
        if db.get_autocommit():
            raise UsageError("write_in needs an open transaction on the connection",
                             hint="BEGIN IMMEDIATE first, or call write()")
        ns = [v or "" for v in item.namespace.values()]
        ns_sql = "ns_agent = ? AND ns_user = ? AND ns_thread = ? AND ns_run = ?"
        digest = text_hash(item.text)
        same = db.execute(
            f"SELECT {_COLUMNS} FROM memory_items WHERE text_hash = ? AND "
            f"superseded_by IS NULL AND {ns_sql} LIMIT 1", (digest, *ns)).fetchall()
        if same:
            return WriteOutcome(action="duplicate", memory=_memory(same[0]))
        rows: list[Any] = db.execute("SELECT value FROM memory_meta WHERE name='generation'"
                                     ).fetchall()
        gen = int(rows[0][0]) + 1
        p = self.policy
        tokens = content_tokens(item.text)
        superseded: list[int] = []
        similar = self._similar(item.vector, item.namespace) if (
            check_similar and item.kind != "artifact") else []
        for mid, text, key, kind, sim in similar:
            if kind != item.kind:
                continue
            overlap = jaccard(tokens, content_tokens(text))
            if sim >= p.duplicate_similarity and overlap >= p.duplicate_overlap and (
                    item.key is None or key == item.key):
                found = db.execute(f"SELECT {_COLUMNS} FROM memory_items WHERE id = ?",
                                   (mid,)).fetchall()
                return WriteOutcome(action="duplicate", memory=_memory(found[0]))
            if (item.key is None and key is None and sim >= p.supersede_similarity
                    and shared_opening(item.text, text) >= p.supersede_opening):
                superseded.append(mid)
        if item.key is not None:
            keyed: list[Any] = db.execute(
                f"SELECT id FROM memory_items WHERE key = ? AND superseded_by IS NULL "
                f"AND {ns_sql}", (item.key, *ns)).fetchall()
            superseded = [int(r[0]) for r in keyed]
        now = self.clock.now()
        prov = item.provenance
        db.execute(
            "INSERT INTO memory_items(handle, text, key, kind, ns_agent, ns_user, ns_thread, "
            "ns_run, metadata, run_id, step, seq, created_at, text_hash, changed_gen) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (item.handle, item.text, item.key, item.kind, *ns,
             json.dumps(dict(item.metadata), separators=(",", ":")),
             prov.run_id, prov.step, prov.seq, now, digest, gen))
        mid = db.last_insert_rowid()
        db.execute("INSERT INTO memory_vectors(id, embedding, bits) VALUES (?, ?, ?)",
                   (mid, item.vector.astype("<f4").tobytes(), sign_bits(item.vector).tobytes()))
        db.execute("INSERT INTO memory_fts(rowid, text, key) VALUES (?, ?, ?)",
                   (mid, item.text, item.key or ""))
        handles: list[str] = []
        for old in superseded:
            marked: list[Any] = db.execute(
                "UPDATE memory_items SET superseded_by = ?, superseded_at = ?, changed_gen = ? "
                "WHERE id = ? RETURNING handle", (item.handle, now, gen, old)).fetchall()
            handles += [str(r[0]) for r in marked]
        db.execute("UPDATE memory_meta SET value = ? WHERE name = 'generation'", (str(gen),))
        memory = Memory(handle=item.handle, text=item.text, namespace=item.namespace,
                        key=item.key, kind=item.kind, metadata=dict(item.metadata),
                        provenance=prov, created_at=now)
        return WriteOutcome(action="superseded" if handles else "added", memory=memory,
                            superseded=tuple(handles))

    def _similar(self, vector: NDArray[np.float32], namespace: Namespace
                 ) -> list[tuple[int, str, str | None, str, float]]:
        """Committed current memories of exactly ``namespace`` most similar to ``vector``."""
        exact = Namespace(**{k: v or "" for k, v in zip(
            ("agent", "user", "thread", "run"), namespace.values(), strict=True)})
        with self._translated():
            self._index.refresh(self._db)
            keep = self._index.mask(exact, history=False)
            ids = self._index.nearest(sign_bits(vector), keep, 8)
            if len(ids) == 0:
                return []
            marks = ",".join("?" * len(ids))
            rows: list[Any] = self._db.execute(
                f"SELECT m.id, m.text, m.key, m.kind, v.embedding FROM memory_items m JOIN "
                f"memory_vectors v ON v.id = m.id WHERE m.id IN ({marks})",
                [int(i) for i in ids]).fetchall()
        out = []
        for mid, text, key, kind, blob in rows:
            sim = float(np.frombuffer(blob, dtype="<f4") @ vector)
            out.append((int(mid), str(text), key, str(kind), sim))
        return sorted(out, key=lambda r: -r[4])

    def forget_sync(self, handle: str) -> bool:
        """Mark a memory superseded (by ``"forgotten"``); False if it is not current."""
        with self._translated():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                got: list[Any] = self._db.execute(
                    "SELECT value FROM memory_meta WHERE name='generation'").fetchall()
                gen = int(got[0][0]) + 1
                done: list[Any] = self._db.execute(
                    "UPDATE memory_items SET superseded_by = ?, superseded_at = ?, "
                    "changed_gen = ? WHERE handle = ? AND superseded_by IS NULL RETURNING id",
                    (FORGOTTEN, self.clock.now(), gen, handle)).fetchall()
                if done:
                    self._db.execute("UPDATE memory_meta SET value = ? WHERE name='generation'",
                                     (str(gen),))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return bool(done)

    # -- reading --------------------------------------------------------------------

    def get_sync(self, handle: str) -> Memory | None:
        """The memory with ``handle`` (current or not), or None."""
        with self._translated():
            rows: list[Any] = self._db.execute(
                f"SELECT {_COLUMNS} FROM memory_items WHERE handle = ?", (handle,)).fetchall()
        return _memory(rows[0]) if rows else None

    def history(self, key: str, scope: Namespace) -> list[Memory]:
        """Every memory with ``key`` in ``scope``, oldest first (superseded included)."""
        clauses, args = _scope_sql(scope)
        with self._translated():
            rows: list[Any] = self._db.execute(
                f"SELECT {_COLUMNS} FROM memory_items WHERE key = ?{clauses} ORDER BY id",
                (key, *args)).fetchall()
        return [_memory(r) for r in rows]

    def count(self, scope: Namespace | None = None, *, history: bool = False) -> int:
        """How many memories ``scope`` holds (current ones unless ``history``)."""
        clauses, args = _scope_sql(scope or Namespace())
        if not history:
            clauses += " AND superseded_by IS NULL"
        with self._translated():
            rows: list[Any] = self._db.execute(
                f"SELECT count(*) FROM memory_items WHERE 1{clauses}", args).fetchall()
        return int(rows[0][0])

    def search_sync(
        self,
        query: str,
        *,
        scope: Namespace,
        k: int = 10,
        vector: NDArray[np.float32] | None = None,
        filters: Mapping[str, Any] | None = None,
        kinds: Sequence[str] | None = None,
        history: bool = False,
        min_similarity: float | None = None,
        mode: Literal["hybrid", "vector", "keyword"] = "hybrid",
    ) -> list[Hit]:
        """Hybrid search; see :meth:`search`. ``vector`` skips embedding the query;
        ``mode`` keeps one leg only (for measuring each signal)."""
        p = self.policy
        query = valid_text(query)
        qv = vector if vector is not None else self.embedder.embed([query])[0]
        threshold = p.min_similarity if min_similarity is None else min_similarity
        with self._translated():
            self._index.refresh(self._db)
            keep = self._index.mask(scope, history=history)
            if filters or kinds:
                keep &= self._allowed(filters or {}, kinds)
            vector_ids: list[int] = []
            sims: dict[int, float] = {}
            if mode != "keyword":
                count = max(p.prefilter_min, p.prefilter_factor * k)
                candidates = self._index.nearest(sign_bits(qv), keep, count)
                sims = self._cosines([int(i) for i in candidates], qv)
                vector_ids = sorted(sims, key=lambda i: -sims[i])[: max(50, 5 * k)]
            keyword_ids: list[int] = []
            terms = fts_terms(query)
            if mode != "vector" and terms:
                keyword_ids = self._keyword(terms, keep, max(50, 5 * k))
                missing = [i for i in keyword_ids if i not in sims]
                sims.update(self._cosines(missing, qv))
            fused = fuse(vector_ids, keyword_ids, p.rrf_k)
            texts = self._rows(list(fused)[: 4 * k + 20])
        hits: list[Hit] = []
        for mid, (score, vrank, krank) in fused.items():
            row = texts.get(mid)
            if row is None:
                continue
            sim = sims.get(mid, 0.0)
            if sim < threshold and (krank is None or keyword_coverage(
                    terms, row[2]) < p.keyword_coverage):
                continue
            hits.append(Hit(memory=_memory(row), score=score, similarity=sim,
                            keyword_rank=krank, vector_rank=vrank))
            if len(hits) == k:
                break
        return hits

    def _allowed(self, filters: Mapping[str, Any], kinds: Sequence[str] | None
                 ) -> NDArray[np.bool_]:
        clauses, args = [], []
        for name, value in filters.items():
            if value is not None and not isinstance(value, str | int | float):
                raise UsageError(
                    f"metadata filter {name!r}: {type(value).__name__} values cannot be "
                    "compared", hint="filter on a string, number, boolean or None")
            clauses.append("json_extract(metadata, ?) = ?")
            args += [f'$."{name}"', value]
        if kinds:
            clauses.append(f"kind IN ({','.join('?' * len(kinds))})")
            args += list(kinds)
        rows: list[Any] = self._db.execute(
            f"SELECT id FROM memory_items WHERE {' AND '.join(clauses)}", args).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        return np.isin(self._index.ids[: len(self._index)], ids)

    def _cosines(self, ids: list[int], qv: NDArray[np.float32]) -> dict[int, float]:
        """Cosine similarity of the float vectors of ``ids`` to ``qv`` (unit vectors:
        a dot product, in numpy; per-row SQL calls of ``vec_distance_cosine`` cost ten
        times more for a few hundred rows)."""
        if not ids:
            return {}
        got: list[int] = []
        blobs: list[bytes] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows: list[Any] = self._db.execute(
                f"SELECT id, embedding FROM memory_vectors WHERE id IN "
                f"({','.join('?' * len(chunk))})", chunk).fetchall()
            got += [int(r[0]) for r in rows]
            blobs += [bytes(r[1]) for r in rows]
        matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(got), -1)
        return dict(zip(got, (matrix @ np.asarray(qv, dtype=np.float32)).tolist(),
                        strict=True))

    def exact_search(self, vector: NDArray[np.float32], *, scope: Namespace, k: int = 10,
                     history: bool = False) -> list[tuple[str, float]]:
        """The ``k`` nearest memories by exact float cosine, computed in SQL by
        sqlite-vec over every vector in scope (no prefilter): the reference the
        prefilter's recall is measured against. Returns ``(handle, similarity)``."""
        clauses, args = _scope_sql(scope)
        if not history:
            clauses += " AND m.superseded_by IS NULL"
        blob = np.asarray(vector, dtype="<f4").tobytes()
        with self._translated():
            rows: list[Any] = self._db.execute(
                f"SELECT m.handle, 1.0 - vec_distance_cosine(v.embedding, ?) AS s "
                f"FROM memory_vectors v JOIN memory_items m ON m.id = v.id "
                f"WHERE 1{clauses.replace(' ns_', ' m.ns_')} ORDER BY s DESC LIMIT ?",
                (blob, *args, k)).fetchall()
        return [(str(r[0]), float(r[1])) for r in rows]

    def _keyword(self, terms: list[str], keep: NDArray[np.bool_], limit: int) -> list[int]:
        """BM25 ranking of the memories in ``keep`` for ``terms``.

        FTS5 scores every match before ordering, so terms in more than
        ``keyword_max_share`` of the memories (they barely move BM25 anyway) are left
        out of the query, which keeps it fast on a large store; if every term is that
        common the keyword leg is skipped and the vector leg answers alone.
        """
        n = len(self._index)
        if n == 0:
            return []
        cap = int(max(1000, self.policy.keyword_max_share * n))
        rare = []
        for term in terms:
            # counting stops at cap + 1 matches: bounded work however common the term
            # (fts5vocab's ``doc`` walks the whole posting list)
            quoted = fts_query([term]) or ""
            doc: list[Any] = self._db.execute(
                "SELECT count(*) FROM (SELECT 1 FROM memory_fts WHERE memory_fts MATCH ? "
                "LIMIT ?)", (quoted, cap + 1)).fetchall()
            if 0 < doc[0][0] <= cap:
                rare.append(term)
        match = fts_query(rare)
        if match is None:
            return []
        ids = self._index.ids[:n]
        allowed = np.zeros(int(ids.max()) + 1, dtype=bool)
        allowed[ids[keep]] = True
        found: list[int] = []
        # the ranking covers every namespace: when other scopes' matches fill the first
        # rows, read on (each term is rare, so the matches are bounded) rather than let
        # them crowd this scope's out
        for cap_rows in (limit * 4, -1):
            rows: list[Any] = self._db.execute(
                "SELECT rowid FROM memory_fts WHERE memory_fts MATCH ? ORDER BY rank "
                "LIMIT ?", (match, cap_rows)).fetchall()
            found = [int(mid) for (mid,) in rows if mid < len(allowed) and allowed[mid]]
            if len(found) >= limit or len(rows) < limit * 4:
                break
        return found[:limit]

    def _rows(self, ids: list[int]) -> dict[int, Any]:
        if not ids:
            return {}
        rows: list[Any] = self._db.execute(
            f"SELECT {_COLUMNS} FROM memory_items WHERE id IN ({','.join('?' * len(ids))})",
            ids).fetchall()
        return {int(r[0]): r for r in rows}

    # -- the MemoryStore protocol (async) ---------------------------------------------

    async def remember(
        self,
        text: str,
        *,
        namespace: Namespace,
        key: str | None = None,
        kind: str = "fact",
        metadata: Mapping[str, Any] | None = None,
        provenance: Provenance | None = None,
    ) -> WriteOutcome:
        """Embed (in a worker thread) and write a memory in its own transaction."""
        item = await asyncio.to_thread(self.prepare, text, namespace=namespace, key=key,
                                       kind=kind, metadata=metadata, provenance=provenance)
        return self.write(item)

    async def search(
        self,
        query: str,
        *,
        scope: Namespace,
        k: int = 10,
        filters: Mapping[str, Any] | None = None,
        kinds: Sequence[str] | None = None,
        history: bool = False,
        min_similarity: float | None = None,
    ) -> list[Hit]:
        """The ``k`` memories of ``scope`` most relevant to ``query``, best first.

        BM25 (FTS5) and vector similarity (binary prefilter, then float cosine) are
        fused by reciprocal rank. Only current memories unless ``history``; only
        those whose metadata equals every item of ``filters`` and whose kind is in
        ``kinds``. Memories below the relevance rule of :class:`MemoryPolicy` are
        left out, so the answer may be empty: nothing relevant.
        """
        query = valid_text(query)
        qv = await asyncio.to_thread(self.embedder.embed, [query])
        return self.search_sync(query, scope=scope, k=k, vector=qv[0], filters=filters,
                                kinds=kinds, history=history, min_similarity=min_similarity)

    async def get(self, handle: str) -> Memory | None:
        """The memory with ``handle``, current or not."""
        return self.get_sync(handle)

    async def forget(self, handle: str) -> bool:
        """Mark the memory superseded; it stays in history."""
        return self.forget_sync(handle)


#: ``PRAGMA application_id`` of a Tether database ("TETH"), as the journal sets it.
TETHER_APPLICATION_ID = 0x54455448


def _mark_tether_file(db: apsw.Connection, path: Path) -> None:
    """Give a new file the journal's application id (the journal refuses a file with
    tables and another id); refuse a file that belongs to another application."""
    rows: list[Any] = db.execute("PRAGMA application_id").fetchall()
    if rows[0][0] == 0:
        db.execute(f"PRAGMA application_id={TETHER_APPLICATION_ID}")
    elif rows[0][0] != TETHER_APPLICATION_ID:
        raise MemoryStoreError(f"{path} is an SQLite database of another application",
                               hint="use a Tether database file, or a new file")


def _scope_sql(scope: Namespace) -> tuple[str, list[Any]]:
    clauses, args = "", []
    for name, value in zip(("ns_agent", "ns_user", "ns_thread", "ns_run"), scope.values(),
                           strict=True):
        if value is not None:
            clauses += f" AND {name} = ?"
            args.append(value)
    return clauses, args


