"""Random-instant SIGKILL sweep at scale: thousands of kills of forked drivers (during
model calls, tool calls, commits and resumes, with racing resumers) over an agent with
idempotent, reconcilable and plain tools and parallel calls.

Figures: ``kills``, ``kills_in_tool``, ``kills_in_model``, ``needs_attention``, and the
invariants ``duplicate_effects``, ``lost_results``, ``wrong_answers`` (all must be 0).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from _common import emit, write_results  # noqa: E402
from tests.runtime.sweep import sweep  # noqa: E402

TARGET_KILLS = 5000
TIME_LIMIT_S = 480


def main() -> None:
    seed = int(os.environ.get("TETHER_SWEEP_SEED", "0")) or int.from_bytes(os.urandom(3), "big")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        report = sweep(Path(tmp), seed=seed, kills=TARGET_KILLS, time_limit_s=TIME_LIMIT_S)
    elapsed = time.monotonic() - started
    config = {"seed": seed, "runs": report["runs"], "elapsed_s": round(elapsed, 1),
              "kill_window_s": report["window_s"],
              "racing_resumers": 0.3, "synchronous": "NORMAL"}
    lines = [emit(name, report[name], "count", **config) for name in (
        "kills", "kills_in_tool", "kills_in_model", "needs_attention", "duplicate_effects",
        "lost_results", "wrong_answers")]
    if report["problems"]:
        print("problems:", report["problems"], file=sys.stderr)
    write_results(__file__, lines)


if __name__ == "__main__":
    main()
