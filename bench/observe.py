"""Observability figures (issue: observability).

- ``log_overhead_us_per_event``: full logging (journal + live JSONL log + redaction)
  against the journal alone, on W1 (N=200), per committed event: the median of the
  differences of interleaved pairs of runs, at durability NORMAL and FULL (FULL's
  fsync jitter is of the same order as the overhead: see ``iqr_us``). Also the
  difference in process CPU time, and the time spent inside the JSONL observer and
  the redactor, measured directly.
- ``trace_s``, ``trace_full_s``, ``show_s``, ``export_content_s`` on a W1 run of
  about 10,000 events (its prompts grow with every step): ``tether trace``,
  ``tether trace --full``, ``tether show`` and
  ``tether export --format otlp-json --content`` end to end in a fresh process
  (interpreter start-up included), output written to a file; and
  ``trace_full_bytes_ratio``: the size of ``trace --full``'s output over the journal's
  (``tether export --format jsonl``).
- ``doctor_s``, ``otlp_export_s`` (and ``otlp_json_s``): the work in process (open the
  store, read, diagnose or build and send), and ``doctor_cli_s`` in a fresh process.

Prints one JSON object per figure and writes them to bench/results/observe.jsonl.
Run with no arguments; it takes a few minutes.
"""

from __future__ import annotations

import asyncio
import io
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, w1_agent, write_results  # noqa: E402
from rich.console import Console  # noqa: E402

from tether.cli._observe_render import render_findings, show  # noqa: E402
from tether.core import Redactor  # noqa: E402
from tether.observe import JsonlLog, diagnose, export_otlp_spans, otlp_json, send_otlp  # noqa: E402
from tether.runtime import Runner  # noqa: E402
from tether.store import SQLiteStore  # noqa: E402

N_LOG = 200
REPEATS = 21
N_BIG = 2500  # W1 with 2,500 steps: 10,004 events
BIG_RUN = "run_01kmb0z6f8cxc3rj1ad2y5g0fz"


class NoRedaction(Redactor):
    """The journal alone: a Runner redacts by default, this one leaves payloads as is."""

    def redact_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload


class TimedRedactor(Redactor):
    """``Redactor.from_env()`` that adds up the time spent redacting."""

    seconds = 0.0

    def redact_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            return super().redact_payload(payload)
        finally:
            self.seconds += time.perf_counter() - started


class Timed:
    """Wraps an observer and adds up the time spent inside it."""

    def __init__(self, inner: Callable[[Any], Any]) -> None:
        self.inner = inner
        self.seconds = 0.0

    def __call__(self, value: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.inner(value)
        finally:
            self.seconds += time.perf_counter() - started


async def _w1(
    db: Path, *, full: bool, log: Path, durability: str
) -> tuple[float, float, int, float, float]:
    """One W1 run; returns (wall s, CPU s, events, observer s, redactor s)."""
    store = SQLiteStore(db, synchronous=durability)  # type: ignore[arg-type]
    jsonl = JsonlLog(log)
    observer = Timed(jsonl)
    redactor = TimedRedactor.from_env()
    if full:
        runner = Runner(store, observers=[observer], redactor=redactor)
    else:
        runner = Runner(store, redactor=NoRedaction(builtin=False, sensitive_keys=()))
    started, cpu = time.perf_counter(), time.process_time()
    result = await runner.run(w1_agent(N_LOG), "look up the records")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    events = (await store.run(result.run_id)).last_seq
    jsonl.close()
    await store.close()
    return elapsed, cpu, events, observer.seconds, redactor.seconds


def log_overhead(directory: Path) -> list[dict[str, Any]]:
    lines = []
    for durability in ("NORMAL", "FULL"):
        wall: dict[bool, list[float]] = {False: [], True: []}
        cpu: dict[bool, list[float]] = {False: [], True: []}
        observer_us: list[float] = []
        redact_us: list[float] = []
        events = 0
        for repeat in range(REPEATS + 1):
            for full in (False, True):
                db = directory / f"log-{durability}-{full}-{repeat}.db"
                elapsed, spent, events, observed, redacted = asyncio.run(_w1(
                    db, full=full, log=directory / f"log-{repeat}.jsonl",
                    durability=durability))
                if repeat == 0:
                    continue  # warm-up
                wall[full].append(elapsed)
                cpu[full].append(spent)
                if full:
                    observer_us.append(observed / events * 1e6)
                    redact_us.append(redacted / events * 1e6)
        config = {"workload": "W1", "N": N_LOG, "events": events, "repeats": REPEATS,
                  "durability": durability}
        paired = [(b - a) / events * 1e6 for a, b in zip(wall[False], wall[True], strict=True)]
        quartiles = statistics.quantiles(paired, n=4)
        lines += [
            emit("log_overhead_us_per_event", statistics.median(paired), "us",
                 compared="journal+JSONL+redaction vs journal only, wall clock, median of "
                          "paired runs", iqr_us=round(quartiles[2] - quartiles[0], 2),
                 **config),
            emit("log_overhead_cpu_us_per_event",
                 (statistics.median(cpu[True]) - statistics.median(cpu[False]))
                 / events * 1e6, "us", compared="the same, process CPU time", **config),
            emit("run_s_journal_only", statistics.median(wall[False]), "s", **config),
            emit("run_s_full_logging", statistics.median(wall[True]), "s", **config),
            emit("jsonl_observer_us_per_event", statistics.median(observer_us), "us",
                 **config),
            emit("redaction_us_per_event", statistics.median(redact_us), "us", **config),
        ]
    return lines


class _Receiver:
    """An OTLP/HTTP endpoint on 127.0.0.1 that accepts and counts bytes."""

    def __init__(self) -> None:
        received = self.received = [0]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                received[0] += len(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _median_time(work: Callable[[], Any], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _doctor(db: Path) -> None:
    async def go() -> None:
        store = SQLiteStore(db)
        events = await store.read(BIG_RUN)
        show(Console(file=io.StringIO(), width=120), render_findings(BIG_RUN, diagnose(events)))
        await store.close()

    asyncio.run(go())


def _spans(db: Path, *, redactor: Redactor) -> Sequence[Any]:
    async def go() -> Sequence[Any]:
        store = SQLiteStore(db)
        try:
            return await export_otlp_spans(store, BIG_RUN, redactor=redactor)
        finally:
            await store.close()

    return asyncio.run(go())


def _cli_seconds(*args: str, output: Path | None = None) -> float:
    """Median wall time of ``tether ARGS`` in a fresh process, stdout to ``output``."""
    tether = Path(sys.executable).with_name("tether")
    times = []
    for _ in range(3):
        with open(output or "/dev/null", "w") as out:
            started = time.perf_counter()
            subprocess.run([str(tether), *args], check=True, stdout=out)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def big_run(directory: Path) -> list[dict[str, Any]]:
    db = directory / "big.db"

    async def make() -> int:
        store = SQLiteStore(db, synchronous="NORMAL")
        await Runner(store).run(w1_agent(N_BIG), "look up the records", run_id=BIG_RUN)
        count = (await store.run(BIG_RUN)).last_seq
        await store.close()
        return count

    events = asyncio.run(make())
    config = {"workload": "W1", "N": N_BIG, "events": events,
              "load_avg_1m": round(os.getloadavg()[0], 1)}
    cli = {"scope": "fresh process, interpreter start-up included, output to a file"}
    journal, full = directory / "journal.jsonl", directory / "full.txt"
    lines = [
        emit("trace_s", _cli_seconds("trace", BIG_RUN, "--db", str(db)), "s", **cli,
             **config),
        emit("trace_full_s", _cli_seconds("trace", BIG_RUN, "--full", "--db", str(db),
                                          output=full), "s", **cli, **config),
    ]
    _cli_seconds("export", BIG_RUN, "--db", str(db), output=journal)
    lines += [
        emit("trace_full_bytes_ratio", full.stat().st_size / journal.stat().st_size, "x",
             trace_full_bytes=full.stat().st_size, journal_bytes=journal.stat().st_size,
             **config),
        emit("show_s", _cli_seconds("show", BIG_RUN, "--db", str(db)), "s", **cli, **config),
        emit("export_content_s", _cli_seconds(
            "export", BIG_RUN, "--format", "otlp-json", "--content", "--db", str(db)), "s",
            **cli, **config),
        emit("doctor_s", _median_time(lambda: _doctor(db)), "s", scope="in process", **config),
    ]
    redactor = Redactor.from_env()
    receiver = _Receiver()
    try:
        sent: list[int] = []

        def export() -> None:
            sent.append(send_otlp(_spans(db, redactor=redactor), endpoint=receiver.url))

        seconds = _median_time(export)
        lines.append(emit("otlp_export_s", seconds, "s", scope="in process, OTLP/HTTP "
                          "protobuf to 127.0.0.1", spans=sent[-1],
                          bytes_per_export=receiver.received[0] // len(sent), **config))
    finally:
        receiver.close()
    lines.append(emit("otlp_json_s", _median_time(
        lambda: otlp_json(_spans(db, redactor=redactor))), "s", scope="in process", **config))
    lines.append(emit("doctor_cli_s", _cli_seconds("doctor", BIG_RUN, "--no-save", "--db",
                                                   str(db)), "s",
                      scope="fresh process, interpreter start-up included", **config))
    return lines


def main() -> None:
    lines: list[dict[str, Any]] = []
    # Benchmarks write next to the project (the disk users run on), not to tmpfs.
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        directory = Path(tmp)
        if "--big-only" not in sys.argv:  # for a quick look; the results need both
            lines += log_overhead(directory)
        lines += big_run(directory)
        if "--big-only" in sys.argv:
            return
    write_results(__file__, lines)


if __name__ == "__main__":
    main()
