"""A random-instant SIGKILL sweep: forked children drive runs and are killed at random
instants (during model calls, tool calls, commits, resumes, and with two resumers
racing), until every run ends; an operator settles what is truly in doubt.

Used by ``tests/runtime/test_kill_sweep.py`` (a few hundred kills) and
``bench/crash_sweep.py`` (thousands). Children are forked from a prepared parent, so a
kill costs no interpreter start-up. Invariants checked for every run: it completes
with the uninterrupted run's answer, every side effect happened exactly once, and its
journal is dense.
"""

from __future__ import annotations

import asyncio
import json
import mmap
import os
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.core import EventType, RunNotFoundError, RunStatus, StoreError, ToolCall
from tether.models import FunctionModel, ModelRequest
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import NOT_APPLIED, ToolContext, tool

#: Phases a child reports through shared memory, so the parent knows where it killed.
OTHER, IN_MODEL, IN_TOOL = 0, 1, 2
_PHASE = mmap.mmap(-1, 1)  # anonymous and shared with every forked child
_EFFECTS: list[Path] = []  # set in the child before it drives a run


def _phase(value: int) -> None:
    _PHASE[0] = value


def _log(line: str) -> None:
    fd = os.open(_EFFECTS[0] / "log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def _logged(kind: str, key: str) -> str | None:
    path = _EFFECTS[0] / "log"
    for line in path.read_text().splitlines() if path.exists() else []:
        found_kind, found_key, value = line.split(" ", 2)
        if (found_kind, found_key) == (kind, key):
            return value
    return None


@tool(idempotent=True)
def remember(note: str, ctx: ToolContext) -> str:
    """Store a note; idempotent by its key (an atomic create-if-absent outside)."""
    _phase(IN_TOOL)
    time.sleep(random.uniform(0, 0.004))
    # The effect is the note's file, created whole or not at all: written aside, then
    # linked into place (a second link with the same key fails: that is the dedupe).
    aside = _EFFECTS[0] / f".tmp-{os.getpid()}-{ctx.idempotency_key}"
    aside.write_text(f"remember {ctx.idempotency_key} {note}")
    try:
        os.link(aside, _EFFECTS[0] / f"remember-{ctx.idempotency_key}")
    except FileExistsError:
        pass
    finally:
        aside.unlink()
    _phase(OTHER)
    return f"noted {note}"


@tool
async def charge(cents: int, ctx: ToolContext) -> str:
    """Charge a card: not idempotent, reconcilable by key."""
    _phase(IN_TOOL)
    await asyncio.sleep(random.uniform(0, 0.004))
    _log(f"charge {ctx.idempotency_key} {cents}")
    await asyncio.sleep(random.uniform(0, 0.002))
    _phase(OTHER)
    return f"charged {cents}"


@charge.reconciler
def _charged(key: str) -> Any:
    cents = _logged("charge", key)
    return NOT_APPLIED if cents is None else f"charged {cents}"


@tool
def send_email(to: str, ctx: ToolContext) -> str:
    """Send an email: not idempotent, no way to check (a call in doubt needs a human)."""
    _phase(IN_TOOL)
    time.sleep(random.uniform(0, 0.003))
    _log(f"email {ctx.idempotency_key} {to}")
    _phase(OTHER)
    return f"sent to {to}"


SCRIPT: list[Any] = [
    ToolCall.of("remember", note="a"),
    ToolCall.of("charge", cents=100),
    ToolCall.of("send_email", to="ann@example.test"),
    [ToolCall.of("remember", note="b"), ToolCall.of("charge", cents=200)],
    [ToolCall.of("send_email", to="bob@example.test"), ToolCall.of("remember", note="c")],
    [ToolCall.of("charge", cents=300), ToolCall.of("remember", note="d")],
    None,  # the answer: what the tools returned, so a lost or changed result shows
]


async def _respond(request: ModelRequest) -> Any:
    _phase(IN_MODEL)
    await asyncio.sleep(random.uniform(0, 0.004))
    _phase(OTHER)
    item = SCRIPT[request.step - 1]
    if item is None:
        return "done: " + " | ".join(str(m.content) for m in request.messages
                                     if m.role == "tool")
    return item


def make_agent() -> Agent:
    return Agent(name="sweep", model=FunctionModel(_respond),
                 tools=[remember, charge, send_email], max_recoveries=10_000)


def _drive(db: Path, run_id: str, start: bool) -> int:
    """In a forked child: drive the run; the exit code says how it ended."""

    async def main() -> RunStatus:
        store = SQLiteStore(db, synchronous="NORMAL")
        try:
            runner = Runner(store)
            if start:
                result = await runner.run(make_agent(), "do the errands", run_id=run_id)
            else:
                result = await runner.resume(run_id, make_agent())
            return result.status
        finally:
            await store.close()

    try:
        status = asyncio.run(main())
    except StoreError:
        return 3  # refused (another driver holds the run) or lost it: nothing to do
    return {RunStatus.COMPLETED: 0, RunStatus.NEEDS_ATTENTION: 10}.get(status, 11)


@dataclass
class Stats:
    kills: int = 0
    kills_in_tool: int = 0
    kills_in_model: int = 0
    needs_attention: int = 0
    refused: int = 0
    runs: int = 0
    duplicate_effects: int = 0
    lost_results: int = 0
    wrong_answers: int = 0
    problems: list[str] = field(default_factory=list)


class Sweep:
    """Drive ``runs`` runs to their end through random kills; check the invariants."""

    def __init__(self, root: Path, *, seed: int, kill_window_s: float | None = None,
                 race: float = 0.3) -> None:
        self.root = root
        self.rng = random.Random(seed)
        self.seed = seed
        #: Kills land uniformly in [0, window): by default the time an uninterrupted
        #: drive takes on this machine (measured by :meth:`reference`).
        self.window = kill_window_s or 0.06
        self._fixed_window = kill_window_s is not None
        self.race = race
        self.stats = Stats()

    def _fork(self, db: Path, run_id: str, start: bool, effects: Path) -> int:
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                random.seed(os.getpid() ^ int(time.time() * 1e6))
                _EFFECTS[:] = [effects]
                _phase(OTHER)
                code = _drive(db, run_id, start)
            finally:
                os._exit(code)
        return pid

    def _attempt(self, db: Path, run_id: str, start: bool, effects: Path) -> list[int]:
        """Fork one driver (or two racing resumers), kill at random instants; exit codes
        of the children that ended on their own."""
        count = 2 if not start and self.rng.random() < self.race else 1
        pids = [self._fork(db, run_id, start, effects) for _ in range(count)]
        codes: list[int] = []
        for pid in pids:
            delay = self.rng.uniform(0, self.window)
            deadline = time.monotonic() + delay
            ended = False
            while time.monotonic() < deadline:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    codes.append(os.waitstatus_to_exitcode(status))
                    ended = True
                    break
                time.sleep(min(0.001, max(0.0, deadline - time.monotonic())))
            if ended:
                continue
            phase = _PHASE[0]
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            if code == -signal.SIGKILL:
                self.stats.kills += 1
                self.stats.kills_in_tool += phase == IN_TOOL
                self.stats.kills_in_model += phase == IN_MODEL
            else:
                codes.append(code)
        return codes

    def run_one(self, index: int | str, reference: tuple[str, Counter[str]] | None) -> str:
        """Drive one run to completion through kills; return its answer."""
        effects = self.root / f"effects-{index}"
        effects.mkdir()
        db = self.root / "sweep.db"
        run_id = f"run_sweep{self.seed}x{index}"
        started = False
        for _ in range(10_000):
            if reference is None:  # the uninterrupted reference: no kills
                pid = self._fork(db, run_id, True, effects)
                _, status = os.waitpid(pid, 0)
                codes = [os.waitstatus_to_exitcode(status)]
            else:
                codes = self._attempt(db, run_id, not started, effects)
            summary = asyncio.run(_summary(db, run_id))
            started = summary is not None
            if summary is None:
                continue
            status, events = summary
            if status == RunStatus.COMPLETED:
                break
            if status == RunStatus.NEEDS_ATTENTION:
                self.stats.needs_attention += 1
                asyncio.run(_operator(db, run_id, events, effects))
            self.stats.refused += codes.count(3)
        else:
            raise AssertionError(f"run {run_id} never completed (seed {self.seed})")
        self.stats.runs += 1
        answer = self._check(db, run_id, effects, reference)
        return answer

    def _check(self, db: Path, run_id: str, effects: Path,
               reference: tuple[str, Counter[str]] | None) -> str:
        status, events = asyncio.run(_summary(db, run_id)) or (None, [])
        answer = next(e.payload["output"] for e in events if e.type == EventType.RUN_COMPLETED)
        lines = _effect_lines(effects)
        keys = Counter(" ".join(line.split(" ")[:2]) for line in lines)
        duplicates = sum(n - 1 for n in keys.values() if n > 1)
        kinds = Counter(line.split(" ")[0] for line in lines)
        if [e.seq for e in events] != list(range(1, len(events) + 1)):
            self.stats.problems.append(f"{run_id}: journal not dense")
        if reference is not None:
            ref_answer, ref_kinds = reference
            self.stats.duplicate_effects += duplicates
            missing = sum((ref_kinds - kinds).values())
            self.stats.lost_results += missing
            self.stats.wrong_answers += answer != ref_answer
            if duplicates or missing or answer != ref_answer:
                self.stats.problems.append(
                    f"{run_id}: duplicates={duplicates} missing={missing} answer={answer!r} "
                    f"effects={sorted(lines)}")
        return answer

    def reference(self) -> tuple[str, Counter[str]]:
        effects = self.root / "effects-ref"
        started = time.monotonic()
        answer = self.run_one("ref", None)
        if not self._fixed_window:
            self.window = max(0.01, time.monotonic() - started)
        lines = _effect_lines(effects)
        self.stats.runs -= 1
        return answer, Counter(line.split(" ")[0] for line in lines)

    def report(self) -> dict[str, Any]:
        s = self.stats
        return {"seed": self.seed, "runs": s.runs, "kills": s.kills,
                "kills_in_tool": s.kills_in_tool, "kills_in_model": s.kills_in_model,
                "needs_attention": s.needs_attention, "refused": s.refused,
                "duplicate_effects": s.duplicate_effects, "lost_results": s.lost_results,
                "wrong_answers": s.wrong_answers, "problems": s.problems[:5]}


def _effect_lines(effects: Path) -> list[str]:
    """Every side effect: the log's lines and the notes' files."""
    log = effects / "log"
    lines = log.read_text().splitlines() if log.exists() else []
    return lines + [p.read_text() for p in sorted(effects.glob("remember-*"))]


async def _summary(db: Path, run_id: str) -> tuple[RunStatus, list[Any]] | None:
    store = SQLiteStore(db, synchronous="NORMAL")
    try:
        events = await store.read(run_id)
    except RunNotFoundError:
        return None
    finally:
        await store.close()
    from tether.runtime import fold

    return fold(run_id, events).status, events


async def _operator(db: Path, run_id: str, events: list[Any], effects: Path) -> None:
    """What a careful operator does with a call in doubt: look at the outside world,
    finish the job if it did not happen, and record the outcome."""
    from tether.runtime import fold

    store = SQLiteStore(db, synchronous="NORMAL")
    try:
        runner = Runner(store)
        _EFFECTS[:] = [effects]
        for call in fold(run_id, events).open_calls.values():
            to = call.arguments["to"]
            if _logged("email", call.idempotency_key) is None:
                _log(f"email {call.idempotency_key} {to}")
            await runner.resolve(run_id, call.call_id, result=f"sent to {to}")
    finally:
        await store.close()


def sweep(root: Path, *, seed: int, kills: int, max_runs: int = 1000,
          time_limit_s: float = 600.0, **options: Any) -> dict[str, Any]:
    """Drive runs through random kills until ``kills`` kills (or ``max_runs`` runs, or
    ``time_limit_s``); returns the report (``json``-able)."""
    s = Sweep(root, seed=seed, **options)
    reference = s.reference()
    started = time.monotonic()
    index = 0
    while (s.stats.kills < kills and index < max_runs
           and time.monotonic() - started < time_limit_s):
        s.run_one(index, reference)
        index += 1
    report = s.report()
    report["window_s"] = round(s.window, 4)
    return json.loads(json.dumps(report))
