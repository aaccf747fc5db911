"""A vector extension that is missing or cannot load fails loudly, naming the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import apsw
import pytest

from tether.memory import MiniLMEmbedder, SQLiteMemoryStore, VectorExtensionError, load_vec

SRC = Path(__file__).resolve().parents[2] / "src"


def test_unloadable_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            embedder: MiniLMEmbedder) -> None:
    fake = tmp_path / "vec0.so"
    fake.write_bytes(b"\x7fELF not really a library")
    monkeypatch.setenv("TETHER_SQLITE_VEC_PATH", str(fake))
    with pytest.raises(VectorExtensionError) as e:
        SQLiteMemoryStore(tmp_path / "m.db", embedder=embedder)
    assert str(fake) in e.value.message
    assert e.value.hint and "sqlite-vec==0.1.9" in e.value.hint
    assert "TETHER_SQLITE_VEC_PATH" in e.value.hint


def test_missing_library_file(tmp_path: Path) -> None:
    db = apsw.Connection(":memory:")
    with pytest.raises(VectorExtensionError) as e:
        load_vec(db, str(tmp_path / "nowhere" / "vec0"))
    assert "nowhere" in e.value.message and e.value.hint


def test_package_not_installed(tmp_path: Path) -> None:
    """In a real child process where ``import sqlite_vec`` fails."""
    code = (
        "import sys; sys.modules['sqlite_vec'] = None\n"
        "from tether.memory import SQLiteMemoryStore, VectorExtensionError\n"
        "try:\n"
        f"    SQLiteMemoryStore({str(tmp_path / 'm.db')!r})\n"
        "except VectorExtensionError as e:\n"
        "    print('ERR', e.message, '|', e.hint)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.stdout.startswith("ERR"), out.stderr
    assert "sqlite-vec is not installed" in out.stdout
    assert 'pip install "tether[memory]"' in out.stdout
