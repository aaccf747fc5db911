"""Every view prints journal content as it is: Rich markup, emoji codes and brackets in
tasks, arguments, results and answers come out verbatim; arguments as JSON."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from tether.cli import app
from tether.cli._observe_render import render_events, render_trace, show
from tether.observe import build_spans
from tether.store import SQLiteStore

TASK = "Explain [italic]list[int][/italic] :smile: \\[x]"
ARG = "[b]x[/b] :x: {a}"
RESULT = "list[int] -> dict[str, Any] [bold]boom[/bold] :warning:"
ANSWER = "It takes list[int] :x: [red]ok[/red]"

AGENT = f'''
from tether.core import ToolCall
from tether.models import FunctionModel
from tether.runtime import Agent
from tether.tools import tool


@tool(inline=True)
def probe(q: str, n: int) -> str:
    """Return something hostile."""
    return {RESULT!r}


def script(request):
    if request.step <= 2:
        return ToolCall.of("probe", q={ARG!r}, n=1)
    return {ANSWER!r}


agent = Agent(name="hostile", model=FunctionModel(script), tools=[probe])
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "hostile_agent.py").write_text(AGENT)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("TETHER_DB", raising=False)
    return tmp_path


def _run(*args: str, code: int = 0) -> str:
    out = CliRunner().invoke(app, list(args))
    assert out.exit_code == code, out.output
    return out.output


def _run_ids() -> list[str]:
    return [r["run_id"] for r in json.loads(_run("runs", "--json"))]


def test_every_view_prints_content_verbatim(project: Path) -> None:
    printed = _run("run", "hostile_agent:agent", TASK)
    assert ANSWER in printed and "❌" not in printed
    _run("run", "hostile_agent:agent", TASK + " again")
    second, first = _run_ids()  # newest first
    arguments = json.dumps({"q": ARG, "n": 1}, ensure_ascii=False)

    shown = _run("show", first)
    for piece in (TASK, RESULT, ANSWER, arguments):
        assert piece in shown, piece
    assert "{'q'" not in shown  # JSON, not a Python dict
    events = json.loads(_run("show", first, "--json"))
    assert events[0]["payload"]["task"] == TASK

    trace = _run("trace", first)
    assert f"execute_tool probe({arguments})" in trace and RESULT in trace
    full = _run("trace", first, "--full")
    for piece in (f"task: {TASK}", f"result: {RESULT}", f"[assistant] {ANSWER}",
                  f"[user] {TASK}", f"arguments: {arguments}"):
        assert piece in full, piece
    prompt = _run("trace", first, "--prompt", "3")
    assert f"[tool] {RESULT}" in prompt and f"[user] {TASK}" in prompt

    tail = _run("tail", first)
    assert RESULT in tail and ANSWER in tail and TASK in tail

    diff = _run("diff", first, second)
    assert "first divergence" in diff and TASK in diff

    doctor = _run("doctor", first, "--no-save")
    assert f'probe({json.dumps({"n": 1, "q": ARG}, separators=(",", ":"))})' in doctor

    for text in (shown, trace, full, prompt, tail, diff, doctor, printed):
        for emoji in ("⚠", "❌", "😄"):
            assert emoji not in text


def test_rich_rendering_on_a_terminal_keeps_content(project: Path) -> None:
    """The terminal path (colours, rich rendering), not only the plain one."""
    _run("run", "hostile_agent:agent", TASK)
    (run_id,) = _run_ids()

    async def read() -> list:  # type: ignore[type-arg]
        store = SQLiteStore(project / ".tether" / "tether.db")
        try:
            return await store.read(run_id)
        finally:
            await store.close()

    import asyncio

    events = asyncio.run(read())
    for lines in (render_trace(build_spans(events), full=True),
                  render_events("header [bold]x[/bold]", events)):
        buffer = io.StringIO()
        console = Console(file=buffer, force_terminal=True, color_system="truecolor",
                          width=400, height=10_000)
        show(console, lines)
        text = re.sub(r"\x1b\[[0-9;]*m", "", buffer.getvalue())
        assert RESULT in text and ANSWER in text and TASK in text
        assert "⚠" not in text and "❌" not in text
