"""Write ``tests/data/journal_format1.db``: journals as this version of Tether writes
them (journal format 1, core schema 2, memory schema 1), committed so that later
versions are tested against them (``tests/store/test_journal_format.py``).

It was made with the code of commit 6bd45a6, the last before the journal format was
versioned (``run.started`` has no ``format``; the file records its schema in
``PRAGMA user_version`` only, before named migration sets)::

    git archive 6bd45a6 src | tar -x -C /tmp/base
    PYTHONPATH=/tmp/base/src python tests/data/make_journal_format1.py

(``PYTHONPATH=src`` makes one with the code of the working tree.) It holds three runs:

- ``run_fixture_tools`` (``journal_agents.fixture_agent``): a model retry, a tool retry,
  a breaker that opens, then a non-idempotent call whose process was SIGKILLed while
  it ran: the run is left ``running`` with that call in doubt (its tool has a
  reconcile hook), to be resumed.
- ``run_fixture_memory`` (``tests/runtime/memory_agent.py``): an agent with memory
  (``context.built``, ``memory.recall``, ``memory.write`` with its rows), SIGKILLed at
  step 11, to be resumed.
- ``run_fixture_team`` (``tests/orchestration/team.py``): a controller that delegated
  to sub-runs (``subrun.started``/``subrun.completed``, child runs), completed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.data import journal_agents as ja  # noqa: E402
from tether.store import SQLiteStore  # noqa: E402

OUT = ROOT / "tests" / "data" / "journal_format1.db"


async def _tools_child(db: Path) -> None:
    from tether.runtime import Runner

    runner = Runner(SQLiteStore(db))
    await runner.run(ja.fixture_agent(), "Exercise every path.", run_id=ja.RUN_ID)
    raise SystemExit("the send tool should have killed this process")


async def _team(db: Path) -> None:
    from tests.orchestration.team import team
    from tether.runtime import Runner

    store = SQLiteStore(db)
    result = await Runner(store).run(team(), "Research alpha, beta, gamma",
                                     run_id=ja.TEAM_RUN_ID)
    assert result.status == "completed", result
    await store.close()


def _child(*args: str, env: dict[str, str] | None = None) -> int:
    src = os.environ.get("PYTHONPATH") or str(ROOT / "src")
    full = {**os.environ, "PYTHONPATH": f"{src}:{ROOT}", **(env or {})}
    return subprocess.run([sys.executable, *args], env=full, cwd=ROOT, check=False).returncode


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--tools-child":
        asyncio.run(_tools_child(Path(sys.argv[2])))
        return
    for suffix in ("", "-wal", "-shm"):
        Path(f"{OUT}{suffix}").unlink(missing_ok=True)
    code = _child(__file__, "--tools-child", str(OUT), env={ja.KILL_ENV: "1"})
    assert code == -9, f"the tools run should have been SIGKILLed, not exit {code}"
    with tempfile.TemporaryDirectory() as tmp:
        code = _child(str(ROOT / "tests" / "runtime" / "memory_agent.py"), str(OUT),
                      ja.MEMORY_RUN_ID, str(Path(tmp) / "prompts.jsonl"),
                      str(ja.MEMORY_STEPS), "--kill-at", str(ja.MEMORY_KILL_AT))
    assert code == -9, f"the memory run should have been SIGKILLed, not exit {code}"
    asyncio.run(_team(OUT))
    store = SQLiteStore(OUT)
    store.checkpoint()  # everything in the main file: no -wal to commit
    asyncio.run(store.close())
    for suffix in ("-wal", "-shm"):
        Path(f"{OUT}{suffix}").unlink(missing_ok=True)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
