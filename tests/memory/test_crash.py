"""A SIGKILL in the middle of writing memories (a real child process) leaves no
partial memory: every memory has its vector and full-text rows, or none exists."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import apsw

from tether.memory import MiniLMEmbedder, SQLiteMemoryStore

ROOT = Path(__file__).resolve().parents[2]


def _spawn(db: Path, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    return subprocess.Popen([sys.executable, "-m", "tests.memory.crash_writer", str(db), mode],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)


def _check_whole(db: Path) -> int:
    c = apsw.Connection(str(db))
    items = c.execute("SELECT count(*) FROM memory_items").fetchall()[0][0]
    vectors = c.execute("SELECT count(*) FROM memory_vectors").fetchall()[0][0]
    indexed = c.execute("SELECT count(*) FROM memory_fts_docsize").fetchall()[0][0]
    orphans = c.execute("SELECT count(*) FROM memory_items m LEFT JOIN memory_vectors v "
                        "ON v.id = m.id WHERE v.id IS NULL").fetchall()[0][0]
    assert items == vectors == indexed and orphans == 0, (items, vectors, indexed, orphans)
    c.execute("INSERT INTO memory_fts(memory_fts) VALUES ('integrity-check')")
    gen = int(c.execute("SELECT value FROM memory_meta WHERE name='generation'"
                        ).fetchall()[0][0])
    top = c.execute("SELECT coalesce(max(changed_gen), 0) FROM memory_items").fetchall()[0][0]
    assert gen == top
    # every key has at most one current memory: a supersession is never half done
    dup = c.execute("SELECT key, count(*) FROM memory_items WHERE superseded_by IS NULL "
                    "GROUP BY key HAVING count(*) > 1").fetchall()
    assert dup == []
    assert c.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    c.close()
    return int(items)


def test_sigkill_at_random_instants(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    db = tmp_path / "crash.db"
    rng = random.Random()
    total = 0
    for _ in range(5):
        child = _spawn(db, "loop")
        assert child.stdout is not None and child.stdout.readline().strip() == "writing"
        time.sleep(rng.uniform(0.0, 0.4))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        count = _check_whole(db)
        assert count >= total
        total = count
    store = SQLiteMemoryStore(db, embedder=embedder)  # and it opens and works again
    assert store.count(history=True) == total
    store.close()


def test_sigkill_inside_the_transaction(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    db = tmp_path / "hold.db"
    child = _spawn(db, "hold")
    assert child.stdout is not None
    line = child.stdout.readline().split()
    assert line[0] == "inside"
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    store = SQLiteMemoryStore(db, embedder=embedder)
    assert store.get_sync(line[1]) is None and store.count(history=True) == 0
    _check_whole(db)
    store.close()


def test_processes_opening_a_new_file_together(tmp_path: Path) -> None:
    """Three processes create the same store at once: the migration set is applied
    once, and every process opens it."""
    db = tmp_path / "new.db"
    code = ("import sys; from tether.memory import SQLiteMemoryStore, MiniLMEmbedder\n"
            "s = SQLiteMemoryStore(sys.argv[1], embedder=MiniLMEmbedder()); s.close()\n"
            "print('opened')")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    children = [subprocess.Popen([sys.executable, "-c", code, str(db)], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(3)]
    outputs = [c.communicate(timeout=120) for c in children]
    assert all(o[0].strip() == "opened" for o in outputs), [o[1][-500:] for o in outputs]
    c = apsw.Connection(str(db))
    assert c.execute("SELECT name, version FROM tether_migrations").fetchall() == [
        ("memory", 1)]
    assert c.execute("SELECT value FROM memory_meta WHERE name = 'generation'"
                     ).fetchall() == [("0",)]
    c.close()
