"""Secrets never reach the database file, the JSONL log or any OpenTelemetry export."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tether.cli import app
from tether.core import Redactor, RunStatus, ToolCall
from tether.models import FunctionModel, ModelRequest
from tether.observe import JsonlLog, OtelObserver
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import tool

from .conftest import OtlpReceiver

ENV_SECRET = "acme-7Hq2Zp9Lx4Vb"  # no known format: caught because the variable is marked
ARG_SECRET = "sk-proj-Vn3kQ8wLp2Rt6yZa9Bc4Df7Gh1Jk5Mn0"
RESULT_SECRET = "AKIAZ7QW3ERTY5UIOP2L"
ANSWER_SECRETS = ("ghp_R2d2C3poBb8Yoda1LukeHan5ChewieLeia77", "Pa55w0rd-xyz")
SECRETS = (ENV_SECRET, ARG_SECRET, RESULT_SECRET, *ANSWER_SECRETS)


@tool(inline=True)
def save_credentials(key: str) -> str:
    """Store an API key; returns the backup credentials."""
    return f"stored. backup key {RESULT_SECRET}, service token {os.environ['ACME_TOKEN']}"


def _script(request: ModelRequest) -> Any:
    if request.step == 1:
        return ToolCall.of("save_credentials", key=ARG_SECRET)
    return (f"Done. Use {ANSWER_SECRETS[0]} and postgres://admin:{ANSWER_SECRETS[1]}@db/app "
            f"(token {os.environ['ACME_TOKEN']}).")


def _agent() -> Agent:
    return Agent(name="keeper", model=FunctionModel(_script), tools=[save_credentials])


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_SECRET_ENV", "ACME_TOKEN")
    monkeypatch.setenv("ACME_TOKEN", ENV_SECRET)


def _raw(*paths: Path) -> bytes:
    return b"".join(p.read_bytes() for p in paths if p.exists())


def _assert_clean(where: str, data: bytes) -> None:
    for secret in SECRETS:
        assert secret.encode() not in data, f"{secret} found in {where}"


def _export_everything(cli: CliRunner, db: Path, run_id: str, tmp_path: Path) -> list[bytes]:
    outputs = []
    for fmt, name in (("jsonl", "export.jsonl"), ("otlp-json", "export.json")):
        target = tmp_path / name
        out = cli.invoke(app, ["export", run_id, "-f", fmt, "--content", "--db", str(db),
                               "-o", str(target)])
        assert out.exit_code == 0, out.output
        outputs.append(target.read_bytes())
    out = cli.invoke(app, ["export", run_id, "-f", "otlp", "--content", "--db", str(db)])
    assert out.exit_code == 0, out.output
    return outputs


def test_secrets_never_reach_journal_log_or_exports(
    tmp_path: Path, secret_env: None, otlp_receiver: OtlpReceiver
) -> None:
    db, log = tmp_path / "t.db", tmp_path / "run.jsonl"
    store = SQLiteStore(db)
    live = OtelObserver(include_content=True)
    with JsonlLog(log) as jsonl:
        runner = Runner(store, redactor=Redactor.from_env(), observers=[jsonl, live])
        result = runner.run_sync(_agent(), "keep my keys safe")
    live.shutdown()
    assert result.status == RunStatus.COMPLETED, result.error
    events = asyncio.run(store.read(result.run_id))
    asyncio.run(store.close())
    # The redaction happened (and the run went on with the redacted values).
    text = log.read_text()
    for marker in ("[REDACTED:openai_key]", "[REDACTED:aws_access_key]",
                   "[REDACTED:github_token]", "[REDACTED:url_password]",
                   "[REDACTED:env:ACME_TOKEN]"):
        assert marker in text
    assert events[-1].payload["output"].startswith("Done. Use [REDACTED:github_token]")
    _assert_clean("the database", _raw(db, Path(f"{db}-wal"), Path(f"{db}-shm")))
    _assert_clean("the JSONL log", log.read_bytes())
    _assert_clean("the live OTLP export", b"".join(otlp_receiver.bodies))
    received = len(otlp_receiver.bodies)
    for data in _export_everything(CliRunner(), db, result.run_id, tmp_path):
        _assert_clean("an export file", data)
    assert len(otlp_receiver.bodies) > received
    _assert_clean("the OTLP export", b"".join(otlp_receiver.bodies))
    assert b"[REDACTED:openai_key]" in b"".join(otlp_receiver.bodies)


def test_exports_redact_even_an_unredacted_journal(
    tmp_path: Path, secret_env: None, otlp_receiver: OtlpReceiver
) -> None:
    db = tmp_path / "t.db"
    store = SQLiteStore(db)
    live = OtelObserver(include_content=True)  # redacts with Redactor.from_env()
    nothing = Redactor(builtin=False, sensitive_keys=())  # a redactor that changes nothing
    result = Runner(store, observers=[live], redactor=nothing).run_sync(
        _agent(), "keep my keys safe")
    live.shutdown()
    asyncio.run(store.close())
    assert ARG_SECRET.encode() in _raw(db, Path(f"{db}-wal"))  # no redactor: stored as is
    _assert_clean("the live OTLP export", b"".join(otlp_receiver.bodies))
    for data in _export_everything(CliRunner(), db, result.run_id, tmp_path):
        _assert_clean("an export file", data)
    _assert_clean("the OTLP export", b"".join(otlp_receiver.bodies))
