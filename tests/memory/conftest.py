from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.memory import MiniLMEmbedder, Namespace, SQLiteMemoryStore


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    """One loaded model for the whole session (loading takes a fraction of a second,
    but every test embedding on a cold session would be slower)."""
    return MiniLMEmbedder(threads=1)


@pytest.fixture
def mstore(tmp_path: Path, embedder: MiniLMEmbedder) -> Iterator[SQLiteMemoryStore]:
    s = SQLiteMemoryStore(tmp_path / "tether.db", embedder=embedder)
    yield s
    s.close()


NS = Namespace(agent="helper", user="ada")
