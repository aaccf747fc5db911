"""A 10-step agent whose tools leave side effects in a file, for crash tests.

Run as a script, it drives one run in a child process and SIGKILLs itself right
after commit point ``--kill-after`` (0: never).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

if __name__ == "__main__":  # run as a script: the repository root is importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.killing_store import KillingStore  # noqa: E402
from tether.core import ToolCall  # noqa: E402
from tether.models import ScriptedModel  # noqa: E402
from tether.runtime import Agent, Runner  # noqa: E402
from tether.tools import NOT_APPLIED, ToolContext, tool  # noqa: E402

EFFECTS_ENV = "CRASH_TEST_EFFECTS"


def _effects() -> Path:
    return Path(os.environ[EFFECTS_ENV])


def _record(line: str) -> None:
    with _effects().open("a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def effect_lines() -> list[str]:
    path = _effects()
    return path.read_text().splitlines() if path.exists() else []


@tool(idempotent=True)
def remember(note: str, ctx: ToolContext) -> str:
    """Store a note (idempotent: keyed by the call's idempotency key)."""
    line = f"remember {ctx.idempotency_key} {note}"
    if line not in effect_lines():
        _record(line)
    return f"noted {note}"


@tool
def charge(cents: int, ctx: ToolContext) -> str:
    """Charge a card (not idempotent; reconcilable by key)."""
    _record(f"charge {ctx.idempotency_key} {cents}")
    return f"charged {cents}"


@charge.reconciler
def _charged(key: str) -> object:
    for line in effect_lines():
        kind, found, cents = line.split(" ", 2)
        if kind == "charge" and found == key:
            return f"charged {cents}"
    return NOT_APPLIED


@tool
def send_email(to: str, ctx: ToolContext) -> str:
    """Send an email (not idempotent, no way to check: a call in doubt needs a human)."""
    _record(f"email {ctx.idempotency_key} {to}")
    return f"sent to {to}"


SCRIPT = [
    ToolCall.of("remember", note="a"),
    ToolCall.of("charge", cents=100),
    ToolCall.of("send_email", to="ann@example.test"),
    [ToolCall.of("remember", note="b"), ToolCall.of("charge", cents=200)],
    ToolCall.of("remember", note="c"),
    [ToolCall.of("send_email", to="bob@example.test"), ToolCall.of("remember", note="d")],
    ToolCall.of("charge", cents=300),
    ToolCall.of("remember", note="e"),
    [ToolCall.of("charge", cents=400), ToolCall.of("remember", note="f")],
    "done: 4 charges, 2 emails, 6 notes",
]

#: Commit points of an uninterrupted run: start, then per step the response (with
#: intents) and one per tool outcome; the last step's response completes the run.
COMMIT_POINTS = 1 + sum(1 + (len(s) if isinstance(s, list) else isinstance(s, ToolCall))
                        for s in SCRIPT)


def make_agent() -> Agent:
    return Agent(name="crashy", model=ScriptedModel(SCRIPT),
                 tools=[remember, charge, send_email], max_recoveries=5)


async def _main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("run_id")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-after", type=int, default=0)
    args = parser.parse_args(argv)
    store = KillingStore(args.db, args.kill_after)
    runner = Runner(store)
    if args.resume:
        result = await runner.resume(args.run_id, make_agent())
    else:
        result = await runner.run(make_agent(), "do the errands", run_id=args.run_id)
    print(result.status, result.output, sep="\n")


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))
