"""`tether run --thread` and `tether threads`, on a real store through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli import app

pytest.importorskip("sqlite_vec")

AGENT = '''
from pathlib import Path
from tether.memory import EstimateTokenCounter, SQLiteMemoryStore
from tether.models import FunctionModel
from tether.core import Message
from tether.runtime import Agent, MemoryConfig
from tests.runtime.memory_agent import HashEmbedder

def answer(request):
    text = "\\n".join(m.content or "" for m in request.messages)
    return Message.assistant("seen: " + ("apples" if "apples" in text else "nothing"))

agent = Agent(name="chat", model=FunctionModel(answer), memory=MemoryConfig(
    store=SQLiteMemoryStore(Path(".tether/tether.db"), embedder=HashEmbedder()),
    counter=EstimateTokenCounter()))
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "chat_agent.py").write_text(AGENT)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    monkeypatch.delenv("TETHER_DB", raising=False)
    return tmp_path


def test_run_on_a_thread_and_list_threads(project: Path) -> None:
    cli = CliRunner()
    first = cli.invoke(app, ["run", "chat_agent:agent", "I like apples; note it.",
                             "--thread", "fruit"])
    assert first.exit_code == 0, first.output
    second = cli.invoke(app, ["run", "chat_agent:agent", "What do I like?", "--thread", "fruit"])
    assert second.exit_code == 0 and "seen: apples" in second.output, second.output
    other = cli.invoke(app, ["run", "chat_agent:agent", "What do I like?", "--thread", "veg"])
    assert other.exit_code == 0 and "seen: nothing" in other.output, other.output
    plain = cli.invoke(app, ["run", "chat_agent:agent", "What do I like?"])
    assert plain.exit_code == 0 and "seen: nothing" in plain.output, plain.output
    listed = {t["thread"]: t for t in json.loads(cli.invoke(app, ["threads", "--json"]).output)}
    assert sorted(listed) == ["fruit", "veg"]
    assert [r["task"] for r in listed["fruit"]["runs"]] == ["I like apples; note it.",
                                                             "What do I like?"]
    table = cli.invoke(app, ["threads"])
    assert table.exit_code == 0 and "fruit" in table.output and "veg" in table.output
    bad = cli.invoke(app, ["run", "chat_agent:agent", "hi", "--thread", "  "])
    assert bad.exit_code != 0
