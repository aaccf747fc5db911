"""Redaction never changes what runs: a run SIGKILLed at any commit point (or inside a
tool) and resumed in a fresh process sends the model byte-identical prompts, and its
tools and reconcile hooks get the real arguments and the real idempotency keys. A
resume without the seal key stops as needs_attention and changes nothing else."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tether.core import Event, EventType
from tether.store import SQLiteStore

from . import sealed_agent
from .corpus import SECRETS

CHILD = Path(sealed_agent.__file__)
#: A user pattern that matches opaque tokens: run ids and idempotency keys look like it.
OPAQUE = json.dumps({"opaque": r"\b[A-Za-z0-9_\-]{12,}\b"})


def _child(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, sealed_agent.DIR_ENV: str(tmp), "TETHER_REDACT_PATTERNS": OPAQUE,
               "TETHER_SEAL_KEY_FILE": str(tmp / "seal.key"), **env}
    environ.pop(sealed_agent.KILL_ENV, None)
    environ.update(env)
    return subprocess.run([sys.executable, str(CHILD), str(tmp / "t.db"), *args],
                          capture_output=True, text=True, env=environ, timeout=120)


def _outcome(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.splitlines()[-1]))


def _journal(db: Path) -> list[Event]:
    async def read() -> list[Event]:
        store = SQLiteStore(db)
        try:
            return await store.read(sealed_agent.RUN_ID)
        finally:
            await store.close()

    return asyncio.run(read())


def _last_prompt_per_step(tmp: Path) -> dict[int, str]:
    """The prompt of each step as last sent (a step interrupted before its response
    was committed is asked again), as the exact JSON text."""
    return {p["step"]: json.dumps(p["messages"]) for p in sealed_agent.read_in(tmp, "prompts")}


def _check_effects(tmp: Path) -> None:
    """Tools and reconcile hooks got the real values and the real keys."""
    key = re.compile(re.escape(sealed_agent.RUN_ID) + r"-\d+-\d+")
    effects = sealed_agent.read_in(tmp, "effects")
    assert effects
    for effect in effects:
        assert key.fullmatch(effect["key"]), effect
        if effect["tool"] == "pay":
            assert effect["card"] == sealed_agent.CARD
            assert effect["password"] in (sealed_agent.PASSWORD, sealed_agent.PASSWORD + "2")
        elif effect["tool"] == "remember":
            assert effect["value"] in (SECRETS[0][2], SECRETS[6][2])
    # An idempotent call that ran twice ran with one key and the same arguments.
    by_key: dict[str, set[str]] = {}
    for effect in effects:
        if effect["tool"] == "remember":
            by_key.setdefault(effect["key"], set()).add(effect["value"])
    assert all(len(values) == 1 for values in by_key.values())
    # A payment is never made twice.
    paid = [e["key"] for e in effects if e["tool"] == "pay"]
    assert len(paid) == len(set(paid)) == 2


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[int, str], str]:
    tmp = tmp_path_factory.mktemp("reference")
    done = _outcome(_child(tmp))
    assert done["status"] == "completed", done
    prompts = _last_prompt_per_step(tmp)
    assert len(prompts) == 4 and SECRETS[0][1] in prompts[1]  # the model saw the task
    assert SECRETS[7][1] in prompts[2] and SECRETS[8][1] in prompts[3]  # and the results
    _check_effects(tmp)
    return prompts, done["output"]


@pytest.mark.parametrize("k", range(1, sealed_agent.COMMIT_POINTS + 1))
def test_killed_and_resumed_runs_send_identical_prompts(
    k: int, tmp_path: Path, reference: tuple[dict[int, str], str]
) -> None:
    prompts, output = reference
    killed = _child(tmp_path, "--kill-after", str(k))
    assert killed.returncode == -9, killed.stderr
    resumed = _outcome(_child(tmp_path, "--resume"))
    assert resumed["status"] == "completed", resumed
    if k < sealed_agent.COMMIT_POINTS:
        assert resumed["output"] == output
    assert _last_prompt_per_step(tmp_path) == prompts
    _check_effects(tmp_path)
    _assert_sealed(tmp_path)


@pytest.mark.parametrize("where", ["remember", "pay"])
def test_a_call_killed_inside_its_tool_reruns_or_reconciles_with_the_real_values(
    where: str, tmp_path: Path, reference: tuple[dict[int, str], str]
) -> None:
    prompts, output = reference
    killed = _child(tmp_path, **{sealed_agent.KILL_ENV: where})
    assert killed.returncode == -9, killed.stderr
    resumed = _outcome(_child(tmp_path, "--resume"))
    assert resumed["status"] == "completed", resumed
    assert resumed["output"] == output
    assert _last_prompt_per_step(tmp_path) == prompts
    _check_effects(tmp_path)
    effects = sealed_agent.read_in(tmp_path, "effects")
    if where == "remember":  # the idempotent tool ran again, same key, same arguments
        first = [e for e in effects if e["tool"] == "remember"][:2]
        assert first[0] == first[1]
    else:  # the hook was asked with the real key, and found the payment
        reconciled = [e for e in effects if e["tool"] == "reconcile"]
        assert reconciled[0]["key"] == f"{sealed_agent.RUN_ID}-2-0"
    _assert_sealed(tmp_path)


def test_resume_without_the_key_or_with_another_stops_and_changes_nothing(
    tmp_path: Path, reference: tuple[dict[int, str], str]
) -> None:
    prompts, output = reference
    killed = _child(tmp_path, "--kill-after", "2")  # the first call's intent is journaled
    assert killed.returncode == -9, killed.stderr
    before = _journal(tmp_path / "t.db")
    effects = sealed_agent.read_in(tmp_path, "effects")
    missing = tmp_path / "elsewhere" / "seal.key"
    other = base64.b64encode(os.urandom(32)).decode()
    for env, why in (({"TETHER_SEAL_KEY_FILE": str(missing)}, "there is no seal key"),
                     ({"TETHER_SEAL_KEY": other}, "was sealed with key")):
        stopped = _outcome(_child(tmp_path, "--resume", **env))
        assert stopped["status"] == "needs_attention", stopped
        assert stopped["error"]["type"] == "SealedValueError"
        assert why in stopped["error"]["message"]
        assert "TETHER_SEAL_KEY" in stopped["error"]["hint"]
        after = _journal(tmp_path / "t.db")
        added = after[len(before):]
        assert after[: len(before)] == before
        assert [e.type for e in added] == [EventType.RUN_NEEDS_ATTENTION]
        before = after
        assert sealed_agent.read_in(tmp_path, "effects") == effects  # nothing ran
        assert not missing.exists()
    resumed = _outcome(_child(tmp_path, "--resume"))  # with the key: it completes
    assert resumed["status"] == "completed", resumed
    assert resumed["output"] == output
    assert _last_prompt_per_step(tmp_path) == prompts
    _check_effects(tmp_path)


def _assert_sealed(tmp: Path) -> None:
    """The journal holds no secret, and the idempotency keys in clear."""
    data = b"".join(p.read_bytes() for p in tmp.glob("t.db*"))
    for _kind, secret, _text in SECRETS[:10]:
        assert secret.encode() not in data
    assert sealed_agent.PASSWORD.encode() not in data
    intents = [e for e in _journal(tmp / "t.db") if e.type == EventType.TOOL_INTENT]
    assert intents and all(e.payload["idempotency_key"].startswith(sealed_agent.RUN_ID)
                           for e in intents)
    assert all("[REDACTED" in json.dumps(e.payload["arguments"]) for e in intents)
