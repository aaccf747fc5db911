from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tether.store import SQLiteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "tether.db")
    yield s
    await s.close()


@pytest.fixture(autouse=True)
def _seal_key_file(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                   ) -> None:
    """Seal keys go to a temporary file, never to the user's ~/.config (children too)."""
    monkeypatch.delenv("TETHER_SEAL_KEY", raising=False)
    monkeypatch.setenv("TETHER_SEAL_KEY_FILE",
                       str(tmp_path_factory.getbasetemp() / "seal" / "seal.key"))
