"""The specialists on their real tools: the coder in a real bubblewrap sandbox, the
api_caller against a real HTTP server on 127.0.0.1, the retriever over a real SQLite
memory file. Each is delegated to from a parent run, as a child run."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tether.core import EventType, RunStatus, ToolCall, UsageError
from tether.memory import Namespace, SQLiteMemoryStore
from tether.models import FunctionModel, ModelRequest, ScriptedModel, step_of
from tether.net import GuardedHttp, HttpPolicy
from tether.orchestration import (
    api_caller,
    as_tool,
    coder,
    formatter,
    register_documents,
    retriever,
)
from tether.orchestration._specialists import PASSAGE_CHARS, passages
from tether.runtime import Agent, Runner
from tether.sandbox import Sandbox
from tether.store import SQLiteStore
from tether.tools import tool

from ..security._servers import serve

requires_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None,
                                    reason="bubblewrap (bwrap) is not installed")


def _echo_last(request: ModelRequest) -> str:
    return request.messages[-1].content or "(nothing)"


def _parent(specialist: Agent) -> Agent:
    return Agent(name="parent", model=ScriptedModel(
        [ToolCall.of(specialist.name, objective="do your one job"), "done"]),
        tools=[as_tool(specialist)])


async def _child_events(store: SQLiteStore, parent_id: str) -> list[Any]:
    [child] = await store.runs(parent_run_id=parent_id)
    assert child.status == RunStatus.COMPLETED
    return await store.read(child.run_id)


def _outcomes(events: list[Any]) -> list[dict[str, Any]]:
    return [e.payload for e in events if e.type in (EventType.TOOL_RESULT,
                                                    EventType.TOOL_ERROR)]


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox() as box:
        yield box


@requires_bwrap
async def test_the_coder_runs_code_in_a_real_sandbox(
    store: SQLiteStore, sandbox: Sandbox, tmp_path: Path,
) -> None:
    marker = tmp_path / "escaped"
    code = (f"import os\nprint(6 * 7)\nopen('out.txt', 'w').write('x')\n"
            f"try:\n    open({str(marker)!r}, 'w').write('x')\nexcept OSError as e:\n"
            f"    print('refused', type(e).__name__)\n")

    def model(request: ModelRequest) -> str | ToolCall:
        return ToolCall.of("run_python", code=code) if step_of(request) == 0 \
            else _echo_last(request)

    result = await Runner(store).run(_parent(coder(FunctionModel(model), sandbox=sandbox)),
                                     "go", run_id="run_p")
    assert result.status == RunStatus.COMPLETED
    [ran] = _outcomes(await _child_events(store, "run_p"))
    payload = json.loads(ran["content"])
    assert payload["exit_code"] == 0
    assert payload["stdout"].splitlines()[0] == "42"
    assert "refused" in payload["stdout"]  # the host's files are out of its reach
    assert [f["path"] for f in payload["files"]] == ["out.txt"]
    assert not marker.exists()
    # The parent got the child's answer (the run's output) as its typed result.
    [parent_result] = _outcomes(await store.read("run_p"))
    sub = json.loads(parent_result["content"])
    assert sub["status"] == "ok" and json.loads(sub["output"])["stdout"] == payload["stdout"]


async def test_the_api_caller_calls_only_its_allowed_host_on_loopback(
    store: SQLiteStore,
) -> None:
    with serve("127.0.0.1") as server:
        base = server.base
        calls = [ToolCall.of("http_request", url=f"{base}/v1/status?q=1"),
                 # the same server by another name: not on the allow-list
                 ToolCall.of("http_request", url=base.replace("127.0.0.1", "localhost")),
                 ToolCall.of("http_request", url=f"{base}/v1/write", method="POST",
                             body="x")]

        def model(request: ModelRequest) -> str | ToolCall:
            step = step_of(request)
            return calls[step] if step < len(calls) else _echo_last(request)

        async with GuardedHttp(HttpPolicy(allowed_hosts=frozenset({"127.0.0.1"}))) as http:
            agent = api_caller(FunctionModel(model), http=http)
            result = await Runner(store).run(_parent(agent), "go", run_id="run_p")
        assert result.status == RunStatus.COMPLETED
        ok, other_name, post = _outcomes(await _child_events(store, "run_p"))
        assert [(s.method, s.path) for s in server.requests] == [("GET", "/v1/status?q=1")]
        assert server.connections == 1  # the refusals were decided before connecting
    assert json.loads(ok["content"])["status"] == 200
    assert "not on this agent's allowlist" in other_name["content"]
    assert "method POST is not allowed" in post["content"]


def test_an_api_caller_without_an_allow_list_is_not_built() -> None:
    with pytest.raises(UsageError) as e:
        api_caller(ScriptedModel(["x"]))
    assert "allowed_hosts" in (e.value.hint or "")
    with pytest.raises(UsageError):
        retriever(ScriptedModel(["x"]))


async def test_the_retriever_searches_a_real_memory_file(
    store: SQLiteStore, tmp_path: Path,
) -> None:
    path = tmp_path / "memory.db"
    memory = SQLiteMemoryStore(path)
    try:
        # Another agent's memory with the same words: out of the retriever's scope.
        await memory.remember("The launch is on Friday, says the other team.",
                              namespace=Namespace(agent="other"))
        documents = {"notes/launch.md": "The launch is on Tuesday 3 March.\n\n"
                                        "Bring the release notes."}

        def model(request: ModelRequest) -> str | ToolCall:
            return ToolCall.of("recall", query="when is the launch") \
                if step_of(request) == 0 else _echo_last(request)

        agent = retriever(FunctionModel(model), memory=memory, documents=documents)
        assert list(agent.tool_map()) == ["recall"]  # narrow: it searches, never writes
        result = await Runner(store).run(_parent(agent), "go", run_id="run_p")
        [found] = _outcomes(await _child_events(store, "run_p"))
        assert "notes/launch.md: The launch is on Tuesday 3 March." in found["content"]
        assert "Friday" not in found["content"]
        assert result.status == RunStatus.COMPLETED
        # Registering the same documents again adds nothing.
        scope = Namespace(agent="retriever")
        count = memory.count(scope)
        assert register_documents(memory, documents, namespace=scope) == 0
        assert memory.count(scope) == count == 2
    finally:
        memory.close()
    reopened = SQLiteMemoryStore(path)  # it is on disk, not in this process
    try:
        hits = await reopened.search("launch Tuesday", scope=Namespace(agent="retriever"))
        assert hits and hits[0].memory.metadata["source"] == "notes/launch.md"
    finally:
        reopened.close()


def test_documents_are_split_into_bounded_passages() -> None:
    sentence = "Word " * 30 + "end. "
    hostile = "x" * (PASSAGE_CHARS * 2 + 7)  # no sentence end, no blank line
    parts = passages(f"{sentence * 20}\n\n\n{hostile}\n \n\u202e\x00 tail")
    assert all(0 < len(p) <= PASSAGE_CHARS for p in parts)
    assert "".join(p for p in parts if p.startswith("x")) == hostile
    assert parts[-1] == "\u202e\x00 tail"


async def test_a_specialist_takes_an_explicit_test_double(store: SQLiteStore) -> None:
    @tool(name="run_python", idempotent=True)
    def fake(code: str) -> str:
        """A test double.

        Args:
            code: Ignored.
        """
        return "double"

    agent = coder(ScriptedModel([ToolCall.of("run_python", code="1"), "ok"]), tools=[fake])
    result = await Runner(store).run(agent, "go")
    assert result.status == RunStatus.COMPLETED
    assert [p["content"] for p in _outcomes(await store.read(result.run_id))] == ["double"]


def test_the_formatter_asks_its_model_for_the_schema() -> None:
    from pydantic import BaseModel

    class Out(BaseModel):
        n: int

    agent = formatter(ScriptedModel(["{}"]), Out)
    assert agent.settings.output_schema == Out.model_json_schema()
    assert agent.tools == []
