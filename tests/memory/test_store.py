"""The long-term store on a real SQLite file: duplicates, supersession, namespaces,
provenance, filters, relevance, hostile text, the shared journal file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import apsw
import numpy as np
import pytest

from tether.core import UsageError
from tether.memory import (
    EmbedderMismatchError,
    MemoryPolicy,
    MiniLMEmbedder,
    Namespace,
    Provenance,
    SQLiteMemoryStore,
    WriteOutcome,
)
from tether.store import SQLiteStore

from .conftest import NS


def put(store: SQLiteMemoryStore, text: str, ns: Namespace = NS, **kw: object) -> WriteOutcome:
    return store.write(store.prepare(text, namespace=ns, **kw))  # type: ignore[arg-type]


def test_exact_duplicate_adds_nothing(mstore: SQLiteMemoryStore) -> None:
    first = put(mstore, "The deploy server is db-3.")
    for restated in ["the deploy server is db-3", "  THE   Deploy server is db-3!! ",
                     "The deploy server is db-3."]:
        again = put(mstore, restated)
        assert again.action == "duplicate"
        assert again.memory.handle == first.memory.handle
    assert mstore.count(NS) == 1


def test_near_duplicate_threshold(mstore: SQLiteMemoryStore) -> None:
    """Same content words, different phrasing: a duplicate. A changed value: not."""
    first = put(mstore, "The deploy server is db-3.")
    near = put(mstore, "Deploy server: db-3")
    assert near.action == "duplicate" and near.memory.handle == first.memory.handle
    changed = put(mstore, "The deploy server is db-4.")
    assert changed.action != "duplicate"
    other = put(mstore, "Alice likes green tea")
    assert put(mstore, "Bob likes green tea").action == "added"
    assert other.action == "added"


def test_near_duplicate_needs_both_similarity_and_overlap(tmp_path: Path,
                                                           embedder: MiniLMEmbedder) -> None:
    """Raising the similarity threshold above the pair's cosine makes it a new memory."""
    a, b = "The deploy server is db-3.", "Deploy server: db-3"
    v = embedder.embed([a, b])
    cosine = float(v[0] @ v[1])
    strict = SQLiteMemoryStore(tmp_path / "s.db", embedder=embedder,
                               policy=MemoryPolicy(duplicate_similarity=cosine + 0.01,
                                                   supersede_similarity=1.01))
    put(strict, a)
    assert put(strict, b).action == "added"
    strict.close()


def test_keyed_supersession_keeps_history(mstore: SQLiteMemoryStore) -> None:
    old = put(mstore, "Ada's timezone is Europe/Paris", key="tz")
    new = put(mstore, "Ada moved; her timezone is America/Toronto", key="tz")
    assert new.action == "superseded" and new.superseded == (old.memory.handle,)
    assert mstore.count(NS) == 1 and mstore.count(NS, history=True) == 2
    current = mstore.search_sync("what is Ada's timezone", scope=NS)
    assert [h.memory.handle for h in current] == [new.memory.handle]
    past = mstore.search_sync("what is Ada's timezone", scope=NS, history=True)
    assert {h.memory.handle for h in past} == {old.memory.handle, new.memory.handle}
    got = mstore.get_sync(old.memory.handle)
    assert got is not None and got.superseded_by == new.memory.handle and not got.current
    assert [m.handle for m in mstore.history("tz", NS)] == [old.memory.handle,
                                                            new.memory.handle]


def test_keyless_supersession_by_similarity(mstore: SQLiteMemoryStore) -> None:
    old = put(mstore, "The API key rotates every 30 days")
    new = put(mstore, "The API key rotates every 90 days")
    assert new.action == "superseded" and new.superseded == (old.memory.handle,)
    unrelated = put(mstore, "The office opens at 9 am")
    assert unrelated.action == "added"
    # look-alike records that differ early are different subjects, however similar
    first = put(mstore, "Invoice INV-4517 for Acme is paid.")
    second = put(mstore, "Invoice INV-6789 for Acme is paid.")
    assert (first.action, second.action) == ("added", "added")
    assert mstore.count(NS) == 4


def test_key_decides_over_similarity(mstore: SQLiteMemoryStore) -> None:
    """With a key, only the same key supersedes, however similar the texts."""
    put(mstore, "The API key rotates every 30 days", key="rotation.prod")
    other = put(mstore, "The API key rotates every 90 days", key="rotation.staging")
    assert other.action == "added"
    assert mstore.count(NS) == 2


def test_namespaces_isolate(mstore: SQLiteMemoryStore) -> None:
    ada = Namespace(agent="helper", user="ada")
    bob = Namespace(agent="helper", user="bob")
    put(mstore, "My favourite colour is teal", ada)
    put(mstore, "My favourite colour is teal", bob)  # not a duplicate: other namespace
    put(mstore, "My favourite colour is orange", Namespace(agent="other", user="ada"))
    hits = mstore.search_sync("favourite colour", scope=ada)
    assert [h.memory.namespace for h in hits] == [ada]
    assert mstore.search_sync("favourite colour", scope=Namespace(user="nobody")) == []
    both = mstore.search_sync("favourite colour", scope=Namespace(agent="helper"))
    assert {h.memory.namespace.user for h in both} == {"ada", "bob"}
    # a key in one namespace never supersedes another's
    put(mstore, "Ada's plan is pro", ada, key="plan")
    assert put(mstore, "Bob's plan is free", bob, key="plan").action == "added"


def test_thread_and_run_scopes(mstore: SQLiteMemoryStore) -> None:
    t1 = Namespace(agent="a", user="u", thread="t1", run="r1")
    t2 = Namespace(agent="a", user="u", thread="t2", run="r2")
    put(mstore, "The draft title is Rivers of Lyon", t1)
    put(mstore, "The draft title is Mountains of Turin", t2)
    assert [h.memory.text for h in mstore.search_sync(
        "draft title", scope=Namespace(thread="t2"))] == ["The draft title is Mountains of Turin"]
    assert len(mstore.search_sync("draft title", scope=Namespace(user="u"))) == 2


def test_provenance_metadata_and_timestamps_round_trip(tmp_path: Path,
                                                      embedder: MiniLMEmbedder) -> None:
    class Clock:
        def now(self) -> float:
            return 1_700_000_000.25

        def monotonic(self) -> float:
            return 0.0

    path = tmp_path / "p.db"
    store = SQLiteMemoryStore(path, embedder=embedder, clock=Clock())
    meta = {"source": "crm", "weight": 3, "tags": ["a", "b"], "note": "ünïcode \u2028 \"q\""}
    out = put(store, "Ada signed the contract", provenance=Provenance(
        run_id="run_01abc", step=7, seq=42), metadata=meta, kind="event")
    store.close()
    again = SQLiteMemoryStore(path, embedder=embedder)
    got = again.get_sync(out.memory.handle)
    assert got is not None
    assert got.provenance == Provenance(run_id="run_01abc", step=7, seq=42)
    assert dict(got.metadata) == meta and got.kind == "event"
    assert got.created_at == 1_700_000_000.25 and got.namespace == NS
    only_crm = again.search_sync("contract", scope=NS, filters={"source": "crm"})
    assert [h.memory.handle for h in only_crm] == [out.memory.handle]
    assert again.search_sync("contract", scope=NS, filters={"source": "web"}) == []
    assert again.search_sync("contract", scope=NS, kinds=["fact"]) == []
    again.close()


def test_nothing_relevant(mstore: SQLiteMemoryStore) -> None:
    for text in ["Ada prefers tea to coffee", "The invoice is due on March 3",
                 "Lyon has 522,000 inhabitants"]:
        put(mstore, text)
    assert mstore.search_sync("What is the boiling point of mercury?", scope=NS) == []
    assert mstore.search_sync("population of Lyon", scope=NS)[0].memory.text.startswith("Lyon")


@pytest.mark.parametrize("hostile", [
    'NEAR("a" "b") OR * AND NOT ^col:"x"', "'; DROP TABLE memory_items; --",
    "\x00nul\x00byte", "emoji 😀 and RTL \u202e text", "\ud800 lone surrogate", "",
    "a" * 20000, "key:value {\"json\": [1, 2]}",
])
def test_hostile_text_is_stored_and_searched_literally(mstore: SQLiteMemoryStore,
                                                       hostile: str) -> None:
    if not hostile.strip():
        with pytest.raises(UsageError):
            put(mstore, hostile)
        assert mstore.search_sync(hostile, scope=NS) == []
        return
    text = hostile.encode("utf-8", "surrogatepass").decode("utf-8", "replace") \
        if "\ud800" in hostile else hostile
    out = put(mstore, text, key=text[:50])
    got = mstore.get_sync(out.memory.handle)
    assert got is not None and got.text == text
    hits = mstore.search_sync(text[:500], scope=NS, min_similarity=-1.0)
    assert out.memory.handle in [h.memory.handle for h in hits]
    assert mstore.count() == 1


def test_forget_marks_superseded(mstore: SQLiteMemoryStore) -> None:
    out = put(mstore, "The door code is 4412")
    assert asyncio.run(mstore.forget(out.memory.handle)) is True
    assert asyncio.run(mstore.forget(out.memory.handle)) is False
    assert mstore.search_sync("door code", scope=NS) == []
    got = mstore.get_sync(out.memory.handle)
    assert got is not None and got.superseded_by == "forgotten"
    assert mstore.search_sync("door code", scope=NS, history=True)


def test_write_in_commits_with_the_callers_transaction(tmp_path: Path,
                                                       embedder: MiniLMEmbedder) -> None:
    """The memory tables live in the journal's file; rows follow the caller's
    transaction (commit and rollback) on the caller's own connection."""
    path = tmp_path / "tether.db"
    journal = SQLiteStore(path)
    store = SQLiteMemoryStore(path, embedder=embedder)
    other = apsw.Connection(str(path))  # like the journal's connection: no extension
    item = store.prepare("Ada's invoice number is INV-7781", namespace=NS)
    with pytest.raises(UsageError):
        store.write_in(other, item)
    other.execute("BEGIN IMMEDIATE")
    store.write_in(other, item)
    other.execute("ROLLBACK")
    assert store.get_sync(item.handle) is None and store.count() == 0
    other.execute("BEGIN IMMEDIATE")
    out = store.write_in(other, item)
    again = store.write_in(other, store.prepare("Ada's invoice number is INV-7781",
                                                namespace=NS))
    assert again.action == "duplicate"  # seen inside the open transaction
    other.execute("COMMIT")
    assert store.get_sync(out.memory.handle) is not None
    assert [h.memory.handle for h in store.search_sync("invoice INV-7781", scope=NS)] == [
        out.memory.handle]
    tables = {r[0] for r in other.execute("SELECT name FROM sqlite_master")}
    assert {"runs", "events", "memory_items", "memory_fts"} <= tables
    asyncio.run(journal.close())
    store.close()
    other.close()


def test_another_embedder_is_refused(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    class Tiny:
        name, dim = "tiny", 8

        def embed(self, texts: object) -> np.ndarray:
            raise AssertionError("not called")

    SQLiteMemoryStore(tmp_path / "e.db", embedder=embedder).close()
    with pytest.raises(EmbedderMismatchError) as e:
        SQLiteMemoryStore(tmp_path / "e.db", embedder=Tiny())  # type: ignore[arg-type]
    assert "all-MiniLM" in str(e.value) and e.value.hint


def test_second_process_sees_writes(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    """Two stores on one file: the second's index picks up the first's writes and
    supersessions."""
    a = SQLiteMemoryStore(tmp_path / "x.db", embedder=embedder)
    b = SQLiteMemoryStore(tmp_path / "x.db", embedder=embedder)
    assert b.search_sync("tea", scope=NS) == []
    old = put(a, "Ada drinks oolong tea", key="drink")
    assert [h.memory.handle for h in b.search_sync("what tea does Ada drink", scope=NS)] == [
        old.memory.handle]
    new = put(a, "Ada drinks jasmine tea", key="drink")
    assert [h.memory.handle for h in b.search_sync("what tea does Ada drink", scope=NS)] == [
        new.memory.handle]
    assert put(b, "Ada drinks jasmine tea", key="drink").action == "duplicate"
    a.close()
    b.close()


def test_memory_first_then_journal_on_one_new_file(tmp_path: Path,
                                                   embedder: MiniLMEmbedder) -> None:
    """Opening the memory store first must not make the journal refuse the file."""
    path = tmp_path / "both.db"
    store = SQLiteMemoryStore(path, embedder=embedder)
    put(store, "Ada likes chess")
    journal = SQLiteStore(path)
    asyncio.run(journal.close())
    store.close()
    again = SQLiteMemoryStore(path, embedder=embedder)
    assert again.count() == 1
    again.close()
    foreign = tmp_path / "foreign.db"
    c = apsw.Connection(str(foreign))
    c.execute("PRAGMA application_id=42; CREATE TABLE t(x)")
    c.close()
    from tether.memory import MemoryStoreError
    with pytest.raises(MemoryStoreError):
        SQLiteMemoryStore(foreign, embedder=embedder)
    c = apsw.Connection(str(foreign))
    assert [r[0] for r in c.execute("SELECT name FROM sqlite_master")] == ["t"]  # untouched
    c.close()


def test_prefilter_finds_what_exact_search_finds(tmp_path: Path,
                                                 embedder: MiniLMEmbedder) -> None:
    """The sign-bit prefilter plus rescoring returns the exact float top 10 (computed in
    SQL by sqlite-vec) on real embeddings, with the prefilter made small."""
    from .labelled import labelled_set

    docs, queries = labelled_set()
    store = SQLiteMemoryStore(tmp_path / "x.db", embedder=embedder,
                              policy=MemoryPolicy(prefilter_min=20, prefilter_factor=2))
    for doc, v in zip(docs, embedder.embed(docs), strict=True):
        store.write(store.prepare(doc, namespace=NS, vector=v))
    scope = Namespace(agent="helper")
    found = []
    for q, v in zip([q for q, _, _ in queries], embedder.embed([q for q, _, _ in queries]),
                    strict=True):
        exact = store.exact_search(v, scope=scope, k=10)
        approx = store.search_sync(q, scope=scope, k=10, vector=v, mode="vector",
                                   min_similarity=-1.0)
        assert [round(s, 4) for _, s in exact] == sorted(
            [round(s, 4) for _, s in exact], reverse=True)
        found.append(len({h for h, _ in exact} & {h.memory.handle for h in approx}) / 10)
    assert sum(found) / len(found) >= 0.9
    assert store.exact_search(v, scope=Namespace(user="nobody"), k=10) == []
    store.close()


def test_event_payloads_are_json(mstore: SQLiteMemoryStore) -> None:
    import json

    out = put(mstore, "Ada's badge number is 5521", key="badge")
    new = put(mstore, "Ada's badge number is 7730", key="badge")
    payload = json.loads(json.dumps(new.to_payload()))
    assert payload["action"] == "superseded" and payload["superseded"] == [out.memory.handle]
    hits = mstore.search_sync("badge number", scope=NS)
    recall = json.loads(json.dumps([h.to_payload() for h in hits]))
    assert recall[0]["handle"] == new.memory.handle and recall[0]["vector_rank"] == 1


def test_write_many_is_one_transaction(mstore: SQLiteMemoryStore) -> None:
    items = [mstore.prepare(f"Sensor {i} is in room {i * 3}", namespace=NS) for i in range(5)]
    items.append(mstore.prepare("sensor 0 is in room 0", namespace=NS))  # exact duplicate
    outcomes = mstore.write_many(items)
    assert [o.action for o in outcomes] == ["added"] * 5 + ["duplicate"]
    bad = [mstore.prepare("Sensor 9 is in room 27", namespace=NS),
           mstore.prepare("x", namespace=NS, handle=items[0].handle)]  # handle taken
    from tether.memory import MemoryStoreError
    with pytest.raises(MemoryStoreError):  # the batch rolls back as a whole
        mstore.write_many(bad)
    assert mstore.count(NS) == 5
