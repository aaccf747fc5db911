"""Hybrid ranking beats each signal alone on a labelled set (numbers printed)."""

from __future__ import annotations

from pathlib import Path

from tether.memory import MiniLMEmbedder, Namespace, SQLiteMemoryStore

from .labelled import labelled_set

NS = Namespace(agent="eval")


def hit_rate(store: SQLiteMemoryStore, handles: list[str],
             queries: list[tuple[str, int, str]], mode: str, k: int) -> float:
    found = 0
    for query, target, _ in queries:
        hits = store.search_sync(query, scope=NS, k=k, mode=mode,  # type: ignore[arg-type]
                                 min_similarity=-1.0)
        found += handles[target] in [h.memory.handle for h in hits]
    return found / len(queries)


def test_hybrid_beats_each_signal(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    docs, queries = labelled_set()
    store = SQLiteMemoryStore(tmp_path / "eval.db", embedder=embedder)
    vectors = embedder.embed(docs)
    handles = []
    for doc, v in zip(docs, vectors, strict=True):
        out = store.write(store.prepare(doc, namespace=NS, vector=v))
        assert out.action == "added", doc
        handles.append(out.memory.handle)
    scores = {mode: hit_rate(store, handles, queries, mode, k=3)
              for mode in ("hybrid", "vector", "keyword")}
    print(f"hit@3 on {len(queries)} queries: {scores}")
    assert scores["hybrid"] > scores["vector"]
    assert scores["hybrid"] > scores["keyword"]
    store.close()
