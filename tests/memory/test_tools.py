"""The memory tools inside a real run (Runner + ScriptedModel + SQLite journal), and
their provenance."""

from __future__ import annotations

from pathlib import Path

from tether import Agent, Runner, ScriptedModel, SQLiteStore, ToolCall
from tether.memory import MiniLMEmbedder, Namespace, SQLiteMemoryStore, memory_tools


async def test_remember_recall_expand_forget_in_a_run(tmp_path: Path,
                                                      embedder: MiniLMEmbedder) -> None:
    path = tmp_path / "tether.db"
    journal = SQLiteStore(path)
    memory = SQLiteMemoryStore(path, embedder=embedder)  # same file as the journal
    ns = Namespace(agent="helper", user="ada", thread="t1")
    tools = memory_tools(memory, ns)
    model = ScriptedModel([
        ToolCall.of("remember", text="Ada's timezone is Europe/Paris", key="tz"),
        ToolCall.of("remember", text="Ada's timezone is Asia/Tokyo", key="tz"),
        ToolCall.of("recall", query="which timezone is Ada in?"),
        ToolCall.of("recall", query="What is the boiling point of mercury?"),
        "done",
    ])
    agent = Agent(name="helper", instructions="Remember things.", model=model, tools=tools)
    result = await Runner(journal).run(agent, "Note Ada's timezone.")
    assert result.status.value == "completed", result.error
    outputs = [e.payload.get("content") for e in await journal.read(result.run_id)
               if e.type == "tool.result"]
    assert outputs[0].startswith("added: mem_")
    assert outputs[1].startswith("superseded: mem_") and "it supersedes" in outputs[1]
    assert "Asia/Tokyo" in outputs[2] and "Europe/Paris" not in outputs[2]
    assert outputs[3] == "nothing relevant"
    current = await memory.search("timezone", scope=Namespace(user="ada"))
    assert len(current) == 1
    got = current[0].memory
    assert got.provenance.run_id == result.run_id and got.provenance.step == 2  # 2nd call
    assert got.namespace == ns
    # a new thread of the same user recalls it; another user does not
    other_thread = {t.name: t for t in memory_tools(memory, Namespace(
        agent="helper", user="ada", thread="t2"))}
    bob = {t.name: t for t in memory_tools(memory, Namespace(agent="helper", user="bob"))}
    from tether.tools import ToolContext
    ctx = ToolContext(run_id="r", step=0, call_id="c", tool="recall", idempotency_key="k")
    assert "Asia/Tokyo" in await other_thread["recall"].invoke({"query": "timezone"}, ctx)
    assert await bob["recall"].invoke({"query": "timezone"}, ctx) == "nothing relevant"
    forgotten = await other_thread["forget"].invoke({"handle": got.handle}, ctx)
    assert forgotten == f"forgot {got.handle}"
    assert await other_thread["recall"].invoke({"query": "timezone"}, ctx) == \
        "nothing relevant"
    assert await other_thread["expand"].invoke({"handle": got.handle}, ctx) == got.text
    assert "no content" in await other_thread["expand"].invoke({"handle": "mem_nope"}, ctx)
    await journal.close()
    memory.close()


async def test_expand_and_forget_never_reach_another_users_memory(
        tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    path = tmp_path / "tether.db"
    journal = SQLiteStore(path)
    memory = SQLiteMemoryStore(path, embedder=embedder)
    theirs = await memory.remember("Bob's PIN is 4321", namespace=Namespace(agent="helper",
                                                                            user="bob"))
    handle = theirs.memory.handle
    tools = memory_tools(memory, Namespace(agent="helper", user="ada"))
    model = ScriptedModel([ToolCall.of("expand", handle=handle),
                           ToolCall.of("forget", handle=handle), "done"])
    agent = Agent(name="helper", model=model, tools=tools)
    result = await Runner(journal).run(agent, "peek")
    outputs = [e.payload.get("content") for e in await journal.read(result.run_id)
               if e.type == "tool.result"]
    assert "4321" not in outputs[0] and outputs[0].startswith("no content")
    assert outputs[1].endswith("is not a current memory")
    still = await memory.search("PIN", scope=Namespace(user="bob"))
    assert [h.memory.handle for h in still] == [handle]  # not forgotten by another user
    memory.close()
    await journal.close()
