"""An agent whose task, tool arguments and tool results hold secrets, for crash tests
of sealing. Run as a script, it drives (or resumes) one run in a child process and
SIGKILLs itself right after commit point ``--kill-after``, or inside the tool named
by ``--kill-in-tool`` (after its side effect), and prints the outcome as JSON.

Every model request is appended to ``$SEALED_TEST_DIR/prompts.jsonl`` and every side
effect (and reconcile hook call) to ``$SEALED_TEST_DIR/effects.jsonl``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.killing_store import KillingStore  # noqa: E402
from tests.secrets.corpus import KEYED, SECRETS  # noqa: E402
from tether.core import ToolCall  # noqa: E402
from tether.models import FunctionModel, ModelRequest  # noqa: E402
from tether.runtime import Agent, Runner  # noqa: E402
from tether.tools import NOT_APPLIED, ToolContext, tool  # noqa: E402

DIR_ENV = "SEALED_TEST_DIR"
KILL_ENV = "SEALED_TEST_KILL_IN_TOOL"
RUN_ID = "run_sealed_0123456789"
TASK = "Pay and remember. " + " | ".join(t for _k, _s, t in SECRETS[:6])
CARD = "4111 1111 1111 1111"
PASSWORD = KEYED["db_password"]


def _path(name: str) -> Path:
    return Path(os.environ[DIR_ENV]) / name


def _append(name: str, record: dict[str, Any]) -> None:
    with _path(name).open("a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_in(directory: Path, name: str) -> list[dict[str, Any]]:
    """The records of ``<directory>/<name>.jsonl``."""
    path = directory / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def read(name: str) -> list[dict[str, Any]]:
    return read_in(Path(os.environ[DIR_ENV]), name.removesuffix(".jsonl"))


def _maybe_die(tool_name: str) -> None:
    if os.environ.get(KILL_ENV) == tool_name:
        os.kill(os.getpid(), signal.SIGKILL)


@tool(idempotent=True, inline=True)
def remember(value: str, ctx: ToolContext) -> str:
    """Store a value (idempotent: keyed by the idempotency key)."""
    _append("effects.jsonl", {"tool": "remember", "key": ctx.idempotency_key, "value": value})
    _maybe_die("remember")
    return json.dumps({"stored": value, "apiKey": KEYED["apiKey"], "echo": SECRETS[7][2]})


@tool(inline=True)
def pay(card: str, password: str, ctx: ToolContext) -> str:
    """Charge a card (not idempotent; reconcilable by key)."""
    _append("effects.jsonl", {"tool": "pay", "key": ctx.idempotency_key, "card": card,
                              "password": password})
    _maybe_die("pay")
    return _receipt(card)


def _receipt(card: str) -> str:
    return f"paid with {card}; receipt token: {SECRETS[8][1]}"


@pay.reconciler
def _paid(key: str) -> object:
    _append("effects.jsonl", {"tool": "reconcile", "key": key})
    for effect in read("effects.jsonl"):
        if effect["tool"] == "pay" and effect["key"] == key:
            return _receipt(effect["card"])  # what the call returned
    return NOT_APPLIED


def _script(request: ModelRequest) -> Any:
    _append("prompts.jsonl", {"step": request.step, "messages": [
        m.model_dump(exclude_defaults=True) for m in request.messages]})
    if request.step == 1:
        return ToolCall.of("remember", value=SECRETS[0][2])
    if request.step == 2:
        return ToolCall.of("pay", card=CARD, password=PASSWORD)
    if request.step == 3:
        return [ToolCall.of("remember", value=SECRETS[6][2]),
                ToolCall.of("pay", card=CARD, password=PASSWORD + "2")]
    return "done: " + SECRETS[9][2]


#: Commit points of an uninterrupted run: start; per step the response (with intents)
#: and one per tool outcome; the last response completes the run.
COMMIT_POINTS = 1 + (1 + 1) + (1 + 1) + (1 + 2) + 1


def make_agent() -> Agent:
    return Agent(name="sealed", model=FunctionModel(_script), tools=[remember, pay],
                 max_recoveries=20)


async def _main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-after", type=int, default=0)
    args = parser.parse_args(argv)
    store = KillingStore(args.db, args.kill_after)
    runner = Runner(store)
    if args.resume:
        result = await runner.resume(RUN_ID, make_agent())
    else:
        result = await runner.run(make_agent(), TASK, run_id=RUN_ID)
    await store.close()
    print(json.dumps({"status": str(result.status), "output": result.output,
                      "error": result.error and result.error.to_dict()}))


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))
