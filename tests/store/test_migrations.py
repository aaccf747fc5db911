"""Named migration sets: each versioned on its own, each migration in its own
transaction, applied once even by processes racing over a new file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import apsw
import pytest

from tether.core import ConfigurationError, SchemaVersionError
from tether.store import (
    CORE_MIGRATIONS,
    MigrationSet,
    SQLiteStore,
    applied_version,
    apply_migrations,
    check_synchronous,
    open_store,
)

ROOT = Path(__file__).resolve().parents[2]
EXTRA = MigrationSet(name="extra", migrations=(
    "CREATE TABLE extra_a (x INTEGER)",
    "CREATE TABLE extra_b (y INTEGER); INSERT INTO extra_b VALUES (1)",
))


def _versions(path: Path) -> dict[str, int]:
    db = apsw.Connection(str(path))
    try:
        return dict(db.execute("SELECT name, version FROM tether_migrations").fetchall())
    finally:
        db.close()


async def test_sets_are_versioned_apart(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    await SQLiteStore(path).close()
    db = apsw.Connection(str(path))
    assert apply_migrations(db, EXTRA, str(path)) == 2
    assert apply_migrations(db, EXTRA, str(path)) == 0  # up to date: read only
    assert applied_version(db, EXTRA) == 2
    assert db.execute("PRAGMA user_version").fetchall()[0][0] == CORE_MIGRATIONS.version
    db.close()
    assert _versions(path) == {"core": CORE_MIGRATIONS.version, "extra": 2}
    await SQLiteStore(path).close()  # the core set does not touch the others
    assert _versions(path) == {"core": CORE_MIGRATIONS.version, "extra": 2}


def test_a_failing_migration_leaves_the_one_before(tmp_path: Path) -> None:
    path = str(tmp_path / "t.db")
    broken = MigrationSet(name="extra", migrations=(
        EXTRA.migrations[0], "CREATE TABLE extra_b (y INTEGER); INSERT INTO nowhere VALUES (1)"))
    db = apsw.Connection(path)
    with pytest.raises(apsw.SQLError):
        apply_migrations(db, broken, path)
    assert applied_version(db, broken) == 1  # the first committed on its own
    assert not db.execute("SELECT name FROM sqlite_master WHERE name = 'extra_b'").fetchall()
    assert not db.in_transaction
    assert apply_migrations(db, EXTRA, path) == 1  # fixed: the second applies
    db.close()


def test_a_newer_set_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    path = str(tmp_path / "t.db")
    db = apsw.Connection(path)
    apply_migrations(db, EXTRA, path)
    older = MigrationSet(name="extra", migrations=EXTRA.migrations[:1])
    with pytest.raises(SchemaVersionError, match="extra schema version 2"):
        apply_migrations(db, older, path)
    assert applied_version(db, EXTRA) == 2
    db.close()


def test_processes_racing_over_a_new_file_apply_each_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    code = ("import sys, apsw\n"
            "from tether.store import MigrationSet, apply_migrations, enable_wal\n"
            "db = apsw.Connection(sys.argv[1]); db.set_busy_timeout(30000)\n"
            "enable_wal(db, 30)\n"
            "s = MigrationSet(name='extra', migrations=(\n"
            "    'CREATE TABLE extra_a (x INTEGER)', 'CREATE TABLE extra_b (y INTEGER)'))\n"
            "print(apply_migrations(db, s, sys.argv[1]))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    children = [subprocess.Popen([sys.executable, "-c", code, str(path)], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(4)]
    outputs = [c.communicate(timeout=120) for c in children]
    assert all(c.returncode == 0 for c in children), [o[1][-400:] for o in outputs]
    # CREATE TABLE fails if run twice: the migrations were applied once in all.
    assert sum(int(o[0]) for o in outputs) == 2
    assert _versions(path) == {"extra": 2}


def test_synchronous_is_checked_once_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert check_synchronous("normal") == "NORMAL"
    for bad in ("OFF", "FULL; DROP TABLE runs", 2, None):
        with pytest.raises(ConfigurationError, match="synchronous must be FULL or NORMAL"):
            check_synchronous(bad)
    with pytest.raises(ConfigurationError, match="synchronous must be") as direct:
        SQLiteStore(tmp_path / "a.db", synchronous="OFF")  # type: ignore[arg-type]
    monkeypatch.setenv("TETHER_SYNCHRONOUS", "off")
    with pytest.raises(ConfigurationError, match="synchronous must be") as env:
        open_store(tmp_path / "b.db")
    assert direct.value.hint == env.value.hint
    assert not (tmp_path / "a.db").exists() and not (tmp_path / "b.db").exists()
    from tests.runtime.memory_agent import HashEmbedder
    from tether.memory import SQLiteMemoryStore

    with pytest.raises(ConfigurationError, match="synchronous must be") as memory:
        SQLiteMemoryStore(tmp_path / "m.db", embedder=HashEmbedder(),
                          synchronous="EXTRA")  # type: ignore[arg-type]
    assert memory.value.hint == direct.value.hint
    assert not (tmp_path / "m.db").exists()
