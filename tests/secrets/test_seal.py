"""Sealing: what redaction replaced is kept encrypted, bound to its run and event, and
comes back exactly; the key file is private and a bad key is a typed error."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import random
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tether.core import (
    SEALED_KEY,
    Event,
    Redactor,
    SealedValueError,
    Sealer,
    SealKey,
    SealKeyError,
    UsageError,
    visible,
)
from tether.store import SQLiteStore

from .corpus import ALL_SECRETS, KEYED, SECRETS, nested_json


def _event(seq: int, payload: dict[str, Any], run_id: str = "run_s") -> Event:
    kind = "run.started" if seq == 1 else "tool.result"
    return Event(run_id=run_id, seq=seq, type=kind, step=0, ts=1.0, payload=payload)


def _hostile(rng: random.Random) -> dict[str, Any]:
    """A payload with secrets at random depths, as keys, in JSON text, next to the
    store's reserved keys, lone surrogates and strings long enough to become blobs."""
    texts = [t for _k, _s, t in SECRETS] + [nested_json(), "plain words", "\udcff odd",
                                            "x " * 150 + SECRETS[0][1], "$blob", ""]

    def value(depth: int) -> Any:
        pick = rng.random()
        if depth > 3 or pick < 0.4:
            return rng.choice(texts)
        if pick < 0.55:
            return rng.choice([1, 2.5, None, True])
        if pick < 0.75:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        keys = ["note", "password", "$blob", "$escaped", "apiKey", SECRETS[3][1], "max_tokens",
                "call_id", "idempotency_key", *KEYED]
        return {rng.choice(keys): value(depth + 1) for _ in range(rng.randint(0, 4))}

    # Data from outside sits where the runtime puts it: tool arguments, and text.
    return {"agent": "a", "task": rng.choice(texts), "arguments": value(0),
            "call_id": "call_1", "tool": "t", "content": json.dumps(value(0))}


async def test_sealed_payloads_come_back_exactly_from_the_store(tmp_path: Path) -> None:
    sealer = Sealer(Redactor(), SealKey(os.urandom(32)))
    store = SQLiteStore(tmp_path / "t.db")
    rng = random.Random(15)
    originals = [_hostile(rng) for _ in range(60)]
    events = [_event(i + 1, p) for i, p in enumerate(originals)]
    stored = [sealer.seal(e) for e in events]
    assert sum(SEALED_KEY in e.payload for e in stored) > 40
    await store.append(stored)
    back = await store.read("run_s")
    await store.close()
    for original, event in zip(originals, back, strict=True):
        assert sealer.unseal(event).payload == original
        shown = json.dumps(visible(event).payload)
        assert SEALED_KEY not in shown
        for secret in ALL_SECRETS:
            assert secret not in shown
    data = _raw_files(tmp_path)
    for secret in ALL_SECRETS:
        assert secret.encode() not in data


def _raw_files(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.iterdir())


def test_nothing_to_seal_needs_no_key(tmp_path: Path) -> None:
    key_file = tmp_path / "cfg" / "seal.key"
    sealer = Sealer(Redactor(), SealKey(key_file=key_file))
    event = _event(1, {"agent": "a", "task": "ordinary text, nothing secret here"})
    assert sealer.seal(event) is event
    assert sealer.unseal(event) is event
    assert not key_file.exists()


def test_the_key_file_is_generated_private_on_first_use(tmp_path: Path) -> None:
    key_file = tmp_path / "cfg" / "tether" / "seal.key"
    sealer = Sealer(Redactor(), SealKey(key_file=key_file))
    sealed = sealer.seal(_event(1, {"task": SECRETS[0][2]}))
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) & 0o077 == 0
    assert len(base64.b64decode(key_file.read_text())) == 32
    # Another process (a resume) with the same file opens it.
    again = Sealer(Redactor(), SealKey(key_file=key_file))
    assert again.unseal(sealed).payload == {"task": SECRETS[0][2]}


def test_the_default_key_file_lives_in_the_users_config(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert SealKey(environ=env).path == tmp_path / "xdg" / "tether" / "seal.key"
    assert SealKey(environ={"TETHER_SEAL_KEY_FILE": "/k/f"}).path == Path("/k/f")


def test_two_processes_creating_the_key_at_once_share_one(tmp_path: Path) -> None:
    key_file = tmp_path / "seal.key"
    code = ("import sys; from tether.core import SealKey; from tether.core._seal import key_id;"
            "print(key_id(SealKey(key_file=sys.argv[1]).get(create=True)))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(key_file)],
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(ids) == 1 and all(p.returncode == 0 for p in procs)
    assert [p.name for p in tmp_path.iterdir()] == ["seal.key"]  # no temporary left


@pytest.mark.parametrize(("content", "mode", "match"), [
    ("not base64 at all!!", 0o600, "not valid base64"),
    (base64.b64encode(b"short").decode(), 0o600, "5 bytes long"),
    ("", 0o600, "0 bytes long"),
    (base64.b64encode(os.urandom(32)).decode(), 0o644, "other users"),
])
def test_a_bad_key_file_is_a_typed_error(tmp_path: Path, content: str, mode: int,
                                         match: str) -> None:
    key_file = tmp_path / "seal.key"
    key_file.write_text(content)
    key_file.chmod(mode)
    sealer = Sealer(Redactor(), SealKey(key_file=key_file))
    with pytest.raises(SealKeyError, match=match) as caught:
        sealer.seal(_event(1, {"task": SECRETS[0][2]}))
    assert caught.value.hint
    with pytest.raises(SealKeyError):
        SealKey(key_file=key_file).get(create=False)


def test_a_bad_key_in_the_environment_is_a_typed_error() -> None:
    with pytest.raises(SealKeyError, match="TETHER_SEAL_KEY"):
        SealKey(environ={"TETHER_SEAL_KEY": "abc"})
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    assert SealKey(environ={"TETHER_SEAL_KEY": key}).source == "TETHER_SEAL_KEY"


def test_without_the_key_or_with_another_the_error_says_so(tmp_path: Path) -> None:
    sealed = Sealer(Redactor(), SealKey(os.urandom(32))).seal(_event(1, {"task": SECRETS[0][2]}))
    missing = tmp_path / "none" / "seal.key"
    with pytest.raises(SealedValueError, match="there is no seal key") as caught:
        Sealer(Redactor(), SealKey(key_file=missing)).unseal(sealed)
    assert "TETHER_SEAL_KEY" in (caught.value.hint or "")
    assert not missing.exists()  # unsealing never makes a key
    with pytest.raises(SealedValueError, match="was sealed with key [0-9a-f]{16}, and the key"):
        Sealer(Redactor(), SealKey(os.urandom(32))).unseal(sealed)


def test_a_sealed_value_cannot_be_moved_or_altered() -> None:
    sealer = Sealer(Redactor(), SealKey(os.urandom(32)))
    first = sealer.seal(_event(2, {"content": SECRETS[0][2]}))
    second = sealer.seal(_event(3, {"content": SECRETS[1][2]}))
    moved = dataclasses.replace(second, payload={**second.payload,
                                                 SEALED_KEY: first.payload[SEALED_KEY]})
    with pytest.raises(SealedValueError, match="altered, or copied"):
        sealer.unseal(moved)
    other_run = dataclasses.replace(first, run_id="run_other")
    with pytest.raises(SealedValueError):
        sealer.unseal(other_run)
    box = bytearray(base64.b64decode(first.payload[SEALED_KEY]["data"]))
    box[-1] ^= 1
    flipped = dataclasses.replace(first, payload={**first.payload, SEALED_KEY: {
        **first.payload[SEALED_KEY], "data": base64.b64encode(bytes(box)).decode()}})
    with pytest.raises(SealedValueError):
        sealer.unseal(flipped)
    assert sealer.unseal(first).payload == {"content": SECRETS[0][2]}


def test_the_reserved_key_cannot_be_committed() -> None:
    sealer = Sealer(Redactor(), SealKey(os.urandom(32)))
    with pytest.raises(UsageError, match="reserved"):
        sealer.seal(_event(1, {SEALED_KEY: "x"}))


def test_events_only_people_read_are_redacted_and_never_sealed(tmp_path: Path) -> None:
    key_file = tmp_path / "seal.key"
    sealer = Sealer(Redactor(), SealKey(key_file=key_file))
    for kind in ("run.needs_attention", "run.failed", "run.quarantined", "finding"):
        event = dataclasses.replace(_event(5, {"error": {"message": SECRETS[0][2]}}), type=kind)
        stored = sealer.seal(event)
        assert SEALED_KEY not in stored.payload
        assert SECRETS[0][1] not in json.dumps(stored.payload)
    assert not key_file.exists()
