"""Real processes for the store's tests: each child speaks one JSON line per message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SRC = str(Path(__file__).resolve().parents[2] / "src")


def env() -> dict[str, str]:
    """The environment of a child: this worktree's sources first."""
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def spawn(*argv: str) -> subprocess.Popen[str]:
    """``python *argv`` (``"-c", code, ...`` or ``script, ...``), talking over pipes."""
    return subprocess.Popen([sys.executable, *argv], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env())


def say(proc: subprocess.Popen[str], message: str = "go") -> None:
    assert proc.stdin is not None
    proc.stdin.write(message + "\n")
    proc.stdin.flush()


def hear(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=60)
        assert proc.stderr is not None
        raise AssertionError(f"child exited {proc.returncode}: {proc.stderr.read()}")
    return dict(json.loads(line))


def finish(proc: subprocess.Popen[str]) -> None:
    """Close the child's input (its cue to end) and check it ended well."""
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
