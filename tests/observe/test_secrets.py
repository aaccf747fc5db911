"""Secrets never reach the database file, the JSONL log, any OpenTelemetry export or any
CLI command's output; and redaction never changes what the model and the tools see."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tether.cli import app
from tether.core import Redactor, RunStatus, ToolCall, TransientModelError
from tether.models import FunctionModel, ModelRequest
from tether.observe import JsonlLog, OtelObserver
from tether.runtime import Agent, Policy, RetryPolicy, Runner
from tether.store import SQLiteStore
from tether.tools import tool

from ..secrets.corpus import ALL_SECRETS, KEYED, SECRETS, nested_json
from .conftest import OtlpReceiver

ENV_SECRET = "acme-7Hq2Zp9Lx4Vb"  # no known format: caught because the variable is marked
TEXTS = [t for _k, _s, t in SECRETS]
EVERY_SECRET = (*ALL_SECRETS, ENV_SECRET)
TASK = "Set up the service. " + " | ".join(TEXTS[:8])
INSTRUCTIONS = "You are careful. Credentials: " + " | ".join(TEXTS[8:])
CONFIG = json.dumps({"apiKey": KEYED["apiKey"], "nested": json.dumps(
    {"token": KEYED["token"], "Api-Key": KEYED["Api-Key"]})})
ARGUMENTS = {"db_password": KEYED["db_password"], "config": CONFIG,
             "note": " ; ".join(TEXTS), "client_secret": KEYED["client_secret"]}
# A call the model got wrong: its arguments are cut off mid-string (malformed JSON).
MALFORMED = json.dumps(ARGUMENTS)[:-30]

#: What the tools received and what the model was sent, per run of the agent.
received: list[dict[str, Any]] = []
prompts: list[list[dict[str, Any]]] = []


@tool(inline=True)
def configure(db_password: str, config: str, note: str, client_secret: str) -> str:
    """Configure the service; returns its settings as JSON."""
    received.append({"db_password": db_password, "config": config, "note": note,
                     "client_secret": client_secret})
    return nested_json() + f" (service token {os.environ.get('ACME_TOKEN', '')})"


@tool(inline=True)
def connect(url: str) -> str:
    """Connect to a database."""
    raise RuntimeError(f"cannot connect to {url}: " + " / ".join(TEXTS))


def _script(request: ModelRequest) -> Any:
    prompts.append([m.model_dump(exclude_defaults=True) for m in request.messages])
    if request.step == 1:
        return [ToolCall(id="c_bad", name="configure", arguments=MALFORMED),
                ToolCall.of("configure", **ARGUMENTS)]
    if request.step == 2:
        if not any("flaky" in str(p) for p in prompts[-2:-1]):
            prompts[-1] = [{"role": "flaky"}]
            raise TransientModelError("upstream said: " + " / ".join(TEXTS))
        return ToolCall.of("connect", url=f"postgres://bob:{SECRETS[10][1]}@db.example.com/app")
    return "Done. " + " ".join(TEXTS) + f" (token {os.environ['ACME_TOKEN']})"


AGENT = Agent(name="keeper", model=FunctionModel(_script), tools=[configure, connect],
              instructions=INSTRUCTIONS,
              policy=Policy(model_retry=RetryPolicy(base_delay_s=0.001, max_delay_s=0.002)))


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_SECRET_ENV", "ACME_TOKEN")
    monkeypatch.setenv("ACME_TOKEN", ENV_SECRET)
    received.clear()
    prompts.clear()


def _raw(*paths: Path) -> bytes:
    return b"".join(p.read_bytes() for p in paths if p.exists())


def _assert_clean(where: str, data: bytes | str) -> None:
    raw = data.encode() if isinstance(data, str) else data
    for secret in EVERY_SECRET:
        assert secret.encode() not in raw, f"{secret} found in {where}"


#: Arguments of each CLI command, given a run id (walks every registered command).
def _commands(run_id: str, other: str, db: Path, out: Path) -> dict[str, list[list[str]]]:
    d = ["--db", str(db)]
    return {
        "run": [["run", "tests.observe.test_secrets:AGENT", TASK, *d]],
        "resume": [["resume", run_id, *d]],
        "resolve": [["resolve", run_id, "c_none", "--result", TEXTS[0], *d]],
        "approve": [["approve", run_id, "c_none", *d],
                    ["approve", run_id, "c_none", "--deny", "--reason", TEXTS[0], *d]],
        "runs": [["runs", *d], ["runs", "--json", *d]],
        "threads": [["threads", *d], ["threads", "--json", *d]],
        "show": [["show", run_id, *d], ["show", run_id, "--json", *d]],
        "trace": [["trace", run_id, *d], ["trace", run_id, "--full", *d],
                  ["trace", run_id, "--json", *d]],
        "tail": [["tail", run_id, *d], ["tail", run_id, "--json", *d]],
        "diff": [["diff", run_id, other, *d], ["diff", run_id, other, "--json", *d]],
        "export": [["export", run_id, "-f", "jsonl", *d],
                   ["export", run_id, "-f", "otlp-json", "--content", *d],
                   ["export", run_id, "-f", "otlp-json", "--content", "-o", str(out), *d],
                   ["export", run_id, "-f", "otlp", "--content", *d]],
        "doctor": [["doctor", run_id, "--no-save", *d], ["doctor", run_id, "--json", *d]],
        "cost": [["cost", run_id, *d], ["cost", run_id, "--json", *d]],
    }


def test_secrets_never_leave_in_clear_and_the_run_sees_them_unchanged(
    tmp_path: Path, secret_env: None, otlp_receiver: OtlpReceiver
) -> None:
    db, log = tmp_path / "t.db", tmp_path / "run.jsonl"
    store = SQLiteStore(db)
    live = OtelObserver(include_content=True)
    quiet = OtelObserver(include_content=False)
    with JsonlLog(log) as jsonl:
        runner = Runner(store, redactor=Redactor.from_env(), observers=[jsonl, live, quiet])
        result = runner.run_sync(AGENT, TASK)
    live.shutdown()
    quiet.shutdown()
    assert result.status == RunStatus.COMPLETED, result.error
    events = asyncio.run(store.read(result.run_id))
    _assert_clean("the database and its WAL (open)", _raw(db, Path(f"{db}-wal")))
    asyncio.run(store.close())

    # The run saw the real values: the model the task, the instructions and the tool
    # results; the tool its arguments; the caller the answer.
    first = prompts[0]
    assert first[0] == {"role": "system", "content": INSTRUCTIONS}
    assert first[1] == {"role": "user", "content": TASK}
    assert received == [ARGUMENTS]
    later = json.dumps(prompts[-1])
    assert json.dumps(MALFORMED) in later and json.dumps(json.dumps(ARGUMENTS)) in later
    assert json.dumps(nested_json())[1:-1] in later
    assert TEXTS[-1] in later  # the tool's exception message
    assert result.output and TEXTS[0] in result.output

    # What was written: redacted everywhere, marked by kind.
    text = log.read_text()
    for kind in {k for k, _s, _t in SECRETS} | {"env:ACME_TOKEN", "api_key", "token"}:
        assert f"[REDACTED:{kind}]" in text, kind
    assert "$sealed" not in text
    assert any("$sealed" in e.payload for e in events)
    kinds = [e.type for e in events]
    assert "retry" in kinds and kinds.count("tool.error") == 2  # exception messages too
    _assert_clean("the database and its WAL", _raw(db, Path(f"{db}-wal"), Path(f"{db}-shm")))
    _assert_clean("the JSONL log", log.read_bytes())
    _assert_clean("the live OTLP export", b"".join(otlp_receiver.bodies))
    assert b"[REDACTED:" in b"".join(otlp_receiver.bodies)

    # Every CLI command's output, and the files and OTLP requests they make.
    cli = CliRunner()
    other = cli.invoke(app, ["run", "tests.observe.test_secrets:AGENT", TASK, "--db", str(db)])
    assert other.exit_code == 0, other.output
    _assert_clean("tether run", other.output)
    others = [e for e in cli.invoke(app, ["runs", "--json", "--db", str(db)]).output.split('"')
              if e.startswith("run_") and e != result.run_id]
    commands = _commands(result.run_id, others[0], db, tmp_path / "spans.json")
    assert set(commands) == {c.name or c.callback.__name__ for c in app.registered_commands
                             if c.callback}
    sent = len(otlp_receiver.bodies)
    for variants in commands.values():
        for args in variants:
            out = cli.invoke(app, args)
            assert out.exit_code in (0, 1, 2), (args, out.output, out.exception)
            assert out.output.strip() or "-o" in args, args
            _assert_clean(f"tether {' '.join(args[:3])}", out.output)
            assert "$sealed" not in out.output, args
    _assert_clean("an export file", (tmp_path / "spans.json").read_bytes())
    assert len(otlp_receiver.bodies) > sent
    _assert_clean("the OTLP export", b"".join(otlp_receiver.bodies))
    _assert_clean("the database after every command",
                  _raw(db, Path(f"{db}-wal"), Path(f"{db}-shm")))


def test_exports_redact_even_an_unredacted_journal(
    tmp_path: Path, secret_env: None, otlp_receiver: OtlpReceiver
) -> None:
    db = tmp_path / "t.db"
    store = SQLiteStore(db)
    live = OtelObserver(include_content=True)  # redacts with Redactor.from_env()
    nothing = Redactor(builtin=False, sensitive_keys=())  # a redactor that changes nothing
    result = Runner(store, observers=[live], redactor=nothing).run_sync(AGENT, TASK)
    live.shutdown()
    asyncio.run(store.close())
    assert KEYED["db_password"].encode() in _raw(db, Path(f"{db}-wal"))  # stored as is
    _assert_clean("the live OTLP export", b"".join(otlp_receiver.bodies))
    cli = CliRunner()
    for args in (["export", result.run_id, "-f", "jsonl"],
                 ["export", result.run_id, "-f", "otlp-json", "--content"],
                 ["export", result.run_id, "-f", "otlp", "--content"]):
        out = cli.invoke(app, [*args, "--db", str(db)])
        assert out.exit_code == 0, out.output
        _assert_clean("an export", out.output)
    _assert_clean("the OTLP export", b"".join(otlp_receiver.bodies))
