"""Attacks on SQLiteMemoryStore (review of issue 18): hostile text and queries, metadata
filters, and one namespace's memories crowding out another's. Real SQLite files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tether.core import UsageError
from tether.memory import Namespace, SQLiteMemoryStore

from ..runtime.memory_agent import HashEmbedder

pytest.importorskip("sqlite_vec")

ALICE = Namespace(agent="crm", user="alice")
MALLORY = Namespace(agent="crm", user="mallory")


def _store(tmp_path: Path) -> SQLiteMemoryStore:
    return SQLiteMemoryStore(tmp_path / "memory.db", embedder=HashEmbedder())


def test_lone_surrogates_are_stored_and_searched(tmp_path: Path) -> None:
    """Fixed: ``json.loads('"\\ud800"')`` gives a str SQLite cannot take; it raised a
    bare UnicodeEncodeError (in the step loop: the run failed "unexpected")."""
    store = _store(tmp_path)
    text = "café \ud800 opens at nine \ud83d\ude00 \x00 late"
    outcome = asyncio.run(store.remember(text, namespace=ALICE, key="caf\udfffe"))
    got = store.get_sync(outcome.memory.handle)
    assert got is not None and got.text == "café \ufffd opens at nine 😀 \x00 late"
    assert got.key == "caf\ufffde"
    # the same text again is a duplicate, not a second memory
    again = asyncio.run(store.remember(text, namespace=ALICE))
    assert again.action == "duplicate" and store.count(ALICE) == 1
    for query in ["\ud800", "opens \udfff nine", "\x00", '"nine" NEAR(x y) text:* ^']:
        hits = asyncio.run(store.search(query, scope=ALICE))
        assert all(h.memory.namespace == ALICE for h in hits)
    assert [h.memory.handle for h in asyncio.run(store.search("opens \udfff nine",
                                                             scope=ALICE))] == \
        [outcome.memory.handle]


def test_a_filter_on_a_non_scalar_value_is_a_usage_error(tmp_path: Path) -> None:
    """Fixed: a list or dict filter value raised apsw's bare TypeError."""
    store = _store(tmp_path)
    asyncio.run(store.remember("the invoice is paid", namespace=ALICE,
                               metadata={"tags": ["a"]}))
    for bad in ({"tags": ["a"]}, {"tags": {"a": 1}}):
        with pytest.raises(UsageError) as e:
            store.search_sync("invoice", scope=ALICE, filters=bad)
        assert e.value.hint


def test_another_namespace_cannot_crowd_out_the_keyword_leg(tmp_path: Path) -> None:
    """Fixed: the keyword leg took the best rows of the whole file, then kept the
    scope's: another user's higher-ranked matches pushed this scope's out."""
    store = _store(tmp_path)
    mine = asyncio.run(store.remember("invoice INV-4517 was paid by Acme on March 3rd "
                                      "after a long dispute about the freight charges",
                                      namespace=ALICE))
    flood = [store.prepare(f"INV-4517 INV-4517 4517 copy {i}", namespace=MALLORY)
             for i in range(300)]
    store.write_many(flood)
    hits = store.search_sync("INV-4517", scope=ALICE, mode="keyword")
    assert [h.memory.handle for h in hits] == [mine.memory.handle]
