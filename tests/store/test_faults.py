"""Storage faults are typed errors with a hint, and nothing committed is lost."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from tether.core import (
    ConfigurationError,
    Event,
    EventType,
    StoreCorruptError,
    StoreFullError,
    StoreNotFoundError,
    StoreReadOnlyError,
    ToolCall,
)
from tether.models import FunctionModel, ModelRequest, step_of
from tether.runtime import Agent, Budget, Runner
from tether.store import SQLiteStore, open_store
from tether.tools import tool

from ._procs import env


def ev(run_id: str, seq: int, kind: str = EventType.DECISION, data: str = "") -> Event:
    payload = {"agent": "a", "task": "t"} if kind == EventType.RUN_STARTED else {"data": data}
    return Event(run_id=run_id, seq=seq, type=kind, step=0, ts=1000.0 + seq, payload=payload)


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB file system of its own; skipped where mounting is not permitted."""
    where = tmp_path / "disk"
    where.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where))
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot mount a tmpfs here: {e}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _plain(events: list[Event]) -> list[object]:
    return [json.loads(json.dumps(e.to_dict())) for e in events]


def _flatten(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _flatten(inner)]
    return [error]


async def test_a_full_disk_is_typed_and_every_earlier_commit_survives(tmpfs: Path) -> None:
    store = SQLiteStore(tmpfs / "t.db")
    await store.append([ev("r", 1, EventType.RUN_STARTED)])
    committed = [1]
    with pytest.raises(StoreFullError) as full:
        for seq in range(2, 10_000):
            await store.append([ev("r", seq, data=os.urandom(4000).hex())])
            committed.append(seq)
    # The real error, not "cannot rollback - no transaction is active".
    assert isinstance(full.value.__cause__, apsw.FullError)
    assert "free space" in (full.value.hint or "")
    assert len(committed) > 10
    assert [e.seq for e in await store.read("r")] == committed
    await store.close()
    reopened = SQLiteStore(tmpfs / "t.db")
    assert [e.seq for e in await reopened.read("r")] == committed
    await reopened.close()


@tool(name="fetch", idempotent=True)
def fetch(page: int) -> str:
    """Return a page of incompressible data."""
    return os.urandom(4000).hex()


def _agent(steps: int) -> Agent:
    def script(request: ModelRequest) -> str | ToolCall:
        k = step_of(request)
        return ToolCall.of("fetch", page=k) if k < steps else f"fetched {steps}"

    return Agent(name="filler", model=FunctionModel(script), tools=[fetch],
                 budget=Budget(max_steps=steps + 1))


async def test_a_run_stopped_by_a_full_disk_resumes_once_space_is_freed(tmpfs: Path) -> None:
    ballast = tmpfs / "ballast"
    ballast.write_bytes(os.urandom(1_700_000))
    seen: list[Event] = []
    runner = Runner(SQLiteStore(tmpfs / "t.db"), observers=[seen.extend])
    with pytest.raises(BaseException) as stopped:  # noqa: B017 - checked just below
        await runner.run(_agent(12), "fill the disk", run_id="run_full")
    assert any(isinstance(e, StoreFullError) for e in _flatten(stopped.value)), stopped.value
    await runner.store.close()
    ballast.unlink()  # free space
    store = SQLiteStore(tmpfs / "t.db")
    journal = await store.read("run_full")
    assert _plain(journal) == _plain(seen)  # every commit it saw, and nothing else
    held = await store.lease("run_full")
    if held is not None and held.expires_at > 0:
        # The stopped runner's release is a write too: whether it still fit on the full
        # disk depends on where the last commit ended (SQLite pages). If it did not,
        # the lease is live and this process owns it: end it as the driver would have.
        await store.release(held)
    result = await Runner(store).resume("run_full", _agent(12))
    assert (result.status, result.output) == ("completed", "fetched 12")
    assert (await store.read("run_full"))[: len(journal)] == journal
    await store.close()


IO_CHILD = """
import asyncio, json, os, resource, signal, sys
from tether.core import Event, TetherError
from tether.store import SQLiteStore

async def main(path):
    store = SQLiteStore(path)
    ev = lambda seq, kind="decision", **p: Event(run_id="r", seq=seq, type=kind, step=0,
                                                 ts=1.0, payload=p)
    await store.append([ev(1, "run.started", agent="a", task="t")])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, hard))  # writes past it: EFBIG
    seq, error = 2, None
    try:
        while True:
            await store.append([ev(seq, data=os.urandom(3000).hex())])
            seq += 1
    except TetherError as e:
        error = {"type": type(e).__name__, "hint": e.hint, "cause": repr(e.__cause__)}
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    await store.append([ev(seq)])
    print(json.dumps({"error": error, "last": seq,
                      "read": [e.seq for e in await store.read("r")]}))

asyncio.run(main(sys.argv[1]))
"""


def test_an_io_error_is_typed_and_loses_nothing(tmp_path: Path) -> None:
    """A real EFBIG from the kernel (a file size limit): SQLite's SQLITE_IOERR_WRITE."""
    out = subprocess.run([sys.executable, "-c", IO_CHILD, str(tmp_path / "t.db")],
                         capture_output=True, text=True, env=env(), timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["error"]["type"] == "StoreIOError", got
    assert "IOError" in got["error"]["cause"] and "resume" in got["error"]["hint"]
    assert got["read"] == list(range(1, got["last"] + 1))  # dense: nothing lost or torn


KILLED_WRITER = """
import asyncio, os, signal, sys
from tether.core import Event
from tether.store import SQLiteStore

async def main(path):
    store = SQLiteStore(path)
    for r in range(3):
        for seq in range(1, 6):
            kind, payload = ("run.started", {"agent": "a", "task": "t"}) if seq == 1 else (
                "decision", {"data": "x" * 300})
            await store.append([Event(run_id=f"r{r}", seq=seq, type=kind, step=0, ts=1.0,
                                      payload=payload)])
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main(sys.argv[1]))
"""


async def _make(db: Path, runs: int = 3) -> list[list[int]]:
    store = SQLiteStore(db)
    for r in range(runs):
        await store.append([ev(f"r{r}", 1, EventType.RUN_STARTED)])
        for seq in range(2, 6):
            await store.append([ev(f"r{r}", seq, data="x" * 300)])
    await store.close()
    return [list(range(1, 6))] * runs


async def _seqs(store: SQLiteStore, runs: int = 3) -> list[list[int]]:
    return [[e.seq for e in await store.read(f"r{r}")] for r in range(runs)]


def _listing(directory: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.iterdir()}


async def test_read_only_mount(tmpfs: Path) -> None:
    clean = tmpfs / "clean.db"
    expected = await _make(clean)
    # A store whose process was killed: its commits are still in the -wal file.
    dirty = tmpfs / "dirty.db"
    await asyncio.to_thread(subprocess.run, [sys.executable, "-c", KILLED_WRITER, str(dirty)],
                            env=env(), timeout=60, check=False)
    assert (tmpfs / "dirty.db-wal").stat().st_size > 0
    # The same with its -wal but without its -shm: unreadable without writing one.
    (tmpfs / "noshm").mkdir()
    for name in ("dirty.db", "dirty.db-wal"):
        shutil.copy(tmpfs / name, tmpfs / "noshm" / name)
    _mount("-o", "remount,ro", str(tmpfs))
    before = _listing(tmpfs)
    try:
        for db in (clean, dirty):
            store = SQLiteStore(db, readonly=True)
            assert await _seqs(store) == expected
            await store.close()
        with pytest.raises(StoreReadOnlyError, match="cannot be written") as refused:
            SQLiteStore(clean)
        assert "read it as it is" in (refused.value.hint or "")
        with pytest.raises(StoreReadOnlyError, match="without a dirty.db-shm") as unreadable:
            SQLiteStore(tmpfs / "noshm" / "dirty.db", readonly=True)
        assert "copy" in (unreadable.value.hint or "")
        with pytest.raises(StoreReadOnlyError):
            SQLiteStore(tmpfs / "new" / "t.db")
        assert _listing(tmpfs) == before
    finally:
        _mount("-o", "remount,rw", str(tmpfs))


async def test_read_only_file(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    expected = await _make(db)
    db.chmod(0o444)
    before = db.read_bytes()
    store = SQLiteStore(db, readonly=True)
    assert await _seqs(store) == expected
    with pytest.raises(StoreReadOnlyError, match="opened read-only"):
        await store.append([ev("r0", 6)])
    await store.close()
    assert db.read_bytes() == before
    if os.geteuid() == 0:  # root writes anyway: check as an unprivileged user
        shared = Path(tempfile_dir())
        try:
            shutil.copy(db, shared / "t.db")
            (shared / "t.db").chmod(0o444)
            code = ("import sys; from tether.core import StoreReadOnlyError\n"
                    "from tether.store import SQLiteStore\n"
                    "import os; os.setgid(65534); os.setuid(65534)\n"
                    "try:\n    SQLiteStore(sys.argv[1])\nexcept StoreReadOnlyError as e:\n"
                    "    print(type(e).__name__)\n")
            out = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-c", code, str(shared / "t.db")],
                capture_output=True, text=True, env=env(), timeout=60)
            assert out.stdout.strip() == "StoreReadOnlyError", out.stderr
        finally:
            shutil.rmtree(shared)
    else:
        with pytest.raises(StoreReadOnlyError):
            SQLiteStore(db)


def tempfile_dir() -> str:
    """A directory an unprivileged user can traverse and read (pytest's is root's)."""
    import tempfile

    path = tempfile.mkdtemp(prefix="tether-ro-")
    os.chmod(path, 0o755)
    return path


async def test_a_copy_without_its_wal(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    store = SQLiteStore(db)
    await store.append([ev("r", 1, EventType.RUN_STARTED)])
    early = tmp_path / "early.db"
    shutil.copy(db, early)  # everything still in the -wal: the copy is empty
    store.checkpoint()
    await store.append([ev("r", 2)])  # in the -wal only
    snapshot = tmp_path / "copies" / "snapshot.db"
    snapshot.parent.mkdir()
    shutil.copy(db, snapshot)
    copy = SQLiteStore(snapshot, readonly=True)
    assert [e.seq for e in await copy.read("r")] == [1]  # as of the checkpoint
    await copy.close()
    with pytest.raises(StoreNotFoundError, match="empty database") as empty:
        SQLiteStore(early, readonly=True)
    assert "-wal" in (empty.value.hint or "")
    # A live store read while its writer goes on: the reader sees new commits.
    reader = SQLiteStore(db, readonly=True)
    assert [e.seq for e in await reader.read("r")] == [1, 2]
    await store.append([ev("r", 3)])
    assert [e.seq for e in await reader.read("r")] == [1, 2, 3]
    await reader.close()
    await store.close()


def test_a_missing_database_is_not_created_for_reading(tmp_path: Path) -> None:
    path = tmp_path / "typo" / "tether.db"
    for opening in (lambda: SQLiteStore(path, readonly=True),
                    lambda: open_store(path, readonly=True),
                    lambda: SQLiteStore(path, create=False)):
        with pytest.raises(StoreNotFoundError, match=f"no Tether database at {path}") as e:
            opening()
        assert "check --db / TETHER_DB" in (e.value.hint or "")
    assert not path.parent.exists()
    path.parent.mkdir()
    path.write_bytes(b"")
    with pytest.raises(StoreNotFoundError, match="empty"):
        SQLiteStore(path, readonly=True)
    assert path.read_bytes() == b""


async def test_a_damaged_page_is_a_corrupt_store(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    await _make(db, runs=40)
    data = bytearray(db.read_bytes())
    assert len(data) > 8 * 4096
    data[4096 * 2 : 4096 * 6] = b"\xa5" * (4096 * 4)  # b-tree pages, not the header
    db.write_bytes(bytes(data))
    store = SQLiteStore(db, readonly=True)
    with pytest.raises(StoreCorruptError) as corrupt:
        await _seqs(store, runs=40)
    assert "backup" in (corrupt.value.hint or "")
    await store.close()


def test_bad_settings_are_configuration_errors(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="FULL or NORMAL"):
        SQLiteStore(tmp_path / "a.db", synchronous="FAST")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        SQLiteStore(tmp_path / "a.db", busy_timeout_ms=-1)
    monkeypatch.setenv("TETHER_SYNCHRONOUS", "fast")
    with pytest.raises(ConfigurationError, match="TETHER_SYNCHRONOUS"):
        open_store(tmp_path / "a.db")
    monkeypatch.setenv("TETHER_SYNCHRONOUS", "normal")
    monkeypatch.setenv("TETHER_BUSY_TIMEOUT_MS", "5s")
    with pytest.raises(ConfigurationError, match="TETHER_BUSY_TIMEOUT_MS"):
        open_store(tmp_path / "a.db")
    assert not (tmp_path / "a.db").exists()
    monkeypatch.setenv("TETHER_BUSY_TIMEOUT_MS", "1500")
    store = open_store(tmp_path / "a.db")
    assert isinstance(store, SQLiteStore)
    assert (store.synchronous, store._conn.busy_timeout_ms) == ("NORMAL", 1500)
    asyncio.run(store.close())
