"""Memory in the step loop: each prompt built under a budget, threads, journaled writes.

An agent with ``memory=MemoryConfig(...)`` gets its prompts from
:class:`~tether.memory.ContextBuilder` instead of the whole history: the instructions,
the task, the thread's earlier turns, this run's turns (old tool outputs masked to a
preview and a handle; large results moved to long-term memory) and the memories
recalled for the step. Each build is journaled as ``context.built`` with a
``memory.recall`` in the transaction of its ``model.request``; every memory write
commits its rows with its ``memory.write`` event (``Journal.commit(within=...)``).

The build is a pure function of the journal (the run's, and the thread's earlier runs
up to the ``seq`` recorded when the run started) and of the store, so a resumed run
sends the prompt the interrupted one would have sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..core import (
    ContextLengthError,
    Event,
    EventType,
    Message,
    TetherError,
    ToolCall,
    message_of,
)
from ..store import RunSummary, SQLiteStore, Store
from ..tools import Tool, ToolContext
from ._call import Driving
from ._journal import Within
from ._state import OpenCall, fold
from ._working import StepView

if TYPE_CHECKING:  # tether.memory needs the "memory" extra: imported when first used
    from ..memory import (
        BuiltContext,
        ContextBuilder,
        Hit,
        Namespace,
        PreparedMemory,
        SQLiteMemoryStore,
        TokenCounter,
        WriteOutcome,
    )


class _Instructed(Protocol):
    """What memory reads of the agent: its name and instructions."""

    @property
    def name(self) -> str: ...
    @property
    def instructions(self) -> str: ...


class _Run(Driving, Protocol):
    """The run as memory drives it (``Execution`` is one): a :class:`Driving` that
    commits with a unit of work and fails the run; typed by this, not by the
    ``Execution``, so the runtime has no import cycle."""

    @property
    def agent(self) -> _Instructed: ...

    async def commit(self, events: list[Event], *, within: Within | None = None) -> None:
        """Commit ``events`` in one transaction, with ``within``'s rows."""

    async def fail(self, error: TetherError, reason: str, *, step: int | None = None,
                   events: Sequence[Event] = (), **extra: Any) -> None:
        """Commit ``run.failed``."""


@dataclass(frozen=True, kw_only=True)
class MemoryConfig:
    """How an agent remembers: what ``Agent(memory=...)`` takes.

    Args:
        budget: Most tokens a prompt may have.
        store: The long-term store; ``None`` opens one in the journal's own file.
        tools: Give the agent ``remember``, ``recall``, ``expand`` and ``forget``.
        user: The user the memories belong to (part of every memory's namespace).
        recall_k: Most memories recalled for a step.
        large_result_tokens: A tool result above this many tokens is moved to long-term
            memory; the prompt shows a preview and a handle for ``expand``.
        counter: Counts tokens; default :func:`~tether.memory.default_counter`.
        summary_tokens: With more than 0, turns dropped from the prompt are stood for by
            an extracted digest of the latest of them (their text, calls and results'
            starts, with handles) of at most this many tokens; 0 (default): a bare note.
    """

    budget: int = 8000
    store: SQLiteMemoryStore | None = None
    tools: bool = True
    user: str | None = None
    recall_k: int = 5
    large_result_tokens: int = 1000
    counter: TokenCounter | None = None
    summary_tokens: int = 0


#: The smallest budget a context-length error may lower the builder's to.
MIN_BUDGET = 512


def thread_key(name: str, *, agent: str, user: str | None = None) -> str:
    """A thread with its scope, as the run table's ``thread`` column holds it: the same
    name used by another agent or another user is another thread.

    Args:
        name: The thread's name (``Runner.run(thread=...)``).
        agent: The agent's name.
        user: The memory's user (``MemoryConfig.user``), if any.
    """
    return json.dumps([agent, user, name], ensure_ascii=False, separators=(",", ":"))


def parse_thread_key(key: str) -> tuple[str | None, str | None, str]:
    """``(agent, user, name)`` of a :func:`thread_key`; a run written before threads
    were scoped holds the bare name: ``(None, None, name)``."""
    if key.startswith("["):
        try:
            found = json.loads(key)
        except ValueError:
            found = None
        if (isinstance(found, list) and len(found) == 3 and isinstance(found[2], str)
                and all(x is None or isinstance(x, str) for x in found[:2])):
            return found[0], found[1], found[2]
    return None, None, key


async def thread_runs(store: Store, thread: str, *, limit: int = 1000) -> list[list[Any]]:
    """The ``limit`` most recent runs of ``thread`` (a :func:`thread_key`, or the bare
    name of runs written before threads were scoped), oldest first, as
    ``[run_id, last_seq]`` (the run table's indexed ``thread`` column)."""
    found = await store.runs(thread=thread, limit=limit)  # newest first
    return [[s.run_id, s.last_seq] for s in sorted(found, key=lambda s: (s.created_at,
                                                                          s.run_id))]


async def list_threads(store: Store, *, limit: int = 1000, agent: str | None = None,
                       user: str | None = None) -> dict[str, list[RunSummary]]:
    """Every thread of the ``limit`` most recent runs, by :func:`thread_key` (see
    :func:`parse_thread_key`), with its runs oldest first; threads ordered by their
    latest run, newest first (the run table's ``thread``). ``agent`` and ``user``
    keep only the threads of that agent, that user."""
    threads: dict[str, list[RunSummary]] = {}
    for summary in await store.runs(limit=limit):  # newest first
        if summary.thread is None:
            continue
        owner, whose, _ = parse_thread_key(summary.thread)
        if (agent is not None and owner != agent) or (user is not None and whose != user):
            continue
        threads.setdefault(summary.thread, []).insert(0, summary)
    return threads


class RunMemory:
    """One execution's memory: the store, the builder, and what the step loop calls."""

    def __init__(self, ex: _Run, config: MemoryConfig) -> None:
        from ..memory import SQLiteMemoryStore, default_counter

        self.ex = ex
        self.config = config
        store = config.store
        if store is None:
            journal = ex.runner.store
            if not isinstance(journal, SQLiteStore):
                raise _needs_sqlite()
            store = SQLiteMemoryStore(journal.path)
        self.store = store
        self.owned = config.store is None
        self.counter = config.counter or default_counter()
        self._builders: dict[int, ContextBuilder] = {}
        self._thread: tuple[list[Message], list[str], dict[str, str]] | None = None
        #: ``memory.recall`` and ``context.built`` of the step being asked for: they
        #: commit with its ``model.request``.
        self.pending: list[Event] = []
        #: Tool calls' write outcomes (see ``_call_writes``), loaded when first needed.
        self._writes: dict[tuple[str, str], WriteOutcome] | None = None
        #: The journal was checked for a prompt to replay (a resume: see ``_journaled``).
        self._replay_checked = False
        #: The messages of the last request journaled by this process (``prefix``).
        self._last: tuple[Message, ...] = ()
        #: How many of the run's messages were checked for large results.
        self._offload_checked = 0
        #: The working-memory view of each call's latest attempt, by call id.
        self._views: dict[str, tuple[str, StepView]] = {}

    # -- scope --------------------------------------------------------------------

    @property
    def namespace(self) -> Namespace:
        """Where this run's memories are written: its thread (so a later run's fact
        of the same key supersedes an earlier run's), else the run itself."""
        from ..memory import Namespace

        state = self.ex.state
        return Namespace(agent=self.ex.agent.name, user=self.config.user,
                         thread=state.thread,
                         run=None if state.thread is not None else state.run_id)

    @property
    def scope(self) -> Namespace:
        """What this run recalls: its thread's memories, or, with no thread, its own."""
        from ..memory import Namespace

        state = self.ex.state
        if state.thread is not None:
            return Namespace(agent=self.ex.agent.name, user=self.config.user,
                             thread=state.thread)
        return Namespace(agent=self.ex.agent.name, user=self.config.user, run=state.run_id)

    def builder(self) -> ContextBuilder:
        budget = self.ex.state.context_budget or self.config.budget
        if budget not in self._builders:
            from ..memory import ContextBuilder

            self._builders[budget] = ContextBuilder(
                budget=budget, counter=self.counter,
                large_result_tokens=self.config.large_result_tokens,
                summary_tokens=self.config.summary_tokens)
        return self._builders[budget]

    # -- writes -------------------------------------------------------------------

    async def write(self, step: int, item: PreparedMemory, **extra: Any) -> WriteOutcome:
        """Write ``item`` and its ``memory.write`` event in one transaction. A tool
        call's write that its call already committed (a rerun after a crash, a retry)
        writes nothing and reports what the first attempt did."""
        from ..memory import Provenance

        ex = self.ex
        box: list[WriteOutcome] = []
        call_id = extra.get("tool_call_id")
        if isinstance(call_id, str):
            earlier = (await self._call_writes()).get((call_id, item.handle))
            if earlier is not None:
                return earlier

        def within(db: Any, seq: int) -> list[Event]:
            prov = Provenance(run_id=ex.state.run_id, step=step, seq=seq)
            outcome = self.store.write_in(db, dataclasses.replace(item, provenance=prov))
            box[:] = [outcome]
            payload = {**outcome.to_payload(), "text": outcome.memory.text, **extra}
            return [ex.event(EventType.MEMORY_WRITE, step, payload)]

        await ex.commit([], within=within)
        if isinstance(call_id, str) and self._writes is not None:
            self._writes[(call_id, item.handle)] = box[0]
        return box[0]

    async def _call_writes(self) -> dict[tuple[str, str], WriteOutcome]:
        """The outcomes of this run's tool calls' writes, by (call id, handle): read
        from the journal once per execution, then kept up to date."""
        if self._writes is None:
            from ..memory import Memory, Namespace, WriteOutcome

            ex = self.ex
            found: dict[tuple[str, str], WriteOutcome] = {}
            events = [e for e in await ex.runner.store.read(ex.state.run_id)
                      if e.type == EventType.MEMORY_WRITE
                      and isinstance(e.payload.get("tool_call_id"), str)
                      and e.payload.get("action") in ("added", "superseded", "duplicate")]
            for e in ex.runner.sealer.unseal_all(events):
                p = e.payload
                memory = Memory(handle=str(p["handle"]), text=str(p.get("text") or ""),
                                namespace=Namespace(**(p.get("namespace") or {})),
                                key=p.get("key"), kind=str(p.get("kind") or "fact"))
                found[(str(p["tool_call_id"]), memory.handle)] = WriteOutcome(
                    action=p["action"], memory=memory,
                    superseded=tuple(p.get("superseded") or ()))
            self._writes = found
        return self._writes

    async def forget(self, step: int, handle: str, **extra: Any) -> bool:
        """Mark a memory forgotten with its ``memory.write`` event, in one transaction
        (the store's ``forget``, on the journal's connection)."""
        ex = self.ex
        box: list[bool] = []

        def within(db: Any, seq: int) -> list[Event]:
            gen = int(db.execute(
                "SELECT value FROM memory_meta WHERE name='generation'").fetchall()[0][0]) + 1
            done = db.execute(
                "UPDATE memory_items SET superseded_by = 'forgotten', superseded_at = ?, "
                "changed_gen = ? WHERE handle = ? AND superseded_by IS NULL RETURNING id",
                (ex.runner.clock.now(), gen, handle)).fetchall()
            box[:] = [bool(done)]
            if not done:
                return []
            db.execute("UPDATE memory_meta SET value = ? WHERE name='generation'", (str(gen),))
            return [ex.event(EventType.MEMORY_WRITE, step, {
                "action": "forgotten", "handle": handle, **extra})]

        await ex.commit([], within=within)
        return box[0]

    async def prepare(self, text: str, origin: str, **kw: Any) -> PreparedMemory:
        """Embed and prepare ``text``, redacted: memory rows are not sealed, so a
        secret is never stored in them in clear (the journal seals the original).

        The handle is derived from the run, ``origin`` (the tool call the memory comes
        from) and the text, so the journal determines it: a call run again after a
        crash, or the same run replayed elsewhere, names the memory alike."""
        text = _valid_text(self.ex.runner.redactor.redact_text(text))
        digest = hashlib.sha256(
            f"{self.ex.state.run_id}\0{origin}\0{text}".encode()).hexdigest()
        return await asyncio.to_thread(self.store.prepare, text, namespace=self.namespace,
                                       handle=f"mem_{digest[:26]}", **kw)

    async def offload(self, step: int) -> None:
        """Move each tool result above ``large_result_tokens`` to long-term memory
        (once: the journal remembers its handle)."""
        state = self.ex.state
        limit = self.config.large_result_tokens
        count = self.builder().counter.count  # cached per text
        for m in state.messages[self._offload_checked:]:
            call_id = m.tool_call_id
            if (m.role != "tool" or not call_id or not m.content
                    or call_id in state.offloaded or count(m.content) <= limit):
                continue
            item = await self.prepare(m.content, call_id, kind="artifact",
                                      metadata={"tool": m.name or "", "call_id": call_id})
            await self.write(step, item, call_id=call_id)
        # messages are only appended (a compaction never runs for a memory agent)
        self._offload_checked = len(state.messages)

    # -- working memory ---------------------------------------------------------------

    def working_view(self, call: OpenCall, tool: str) -> StepView:
        """A fresh view for one attempt of ``call``; an earlier attempt's view is
        closed, its entries dropped (only the attempt whose outcome commits counts)."""
        old = self._views.get(call.call_id)
        if old is not None:
            old[1].take(self.ex.event, call.step)
        view = StepView(self.ex.state.working, call_id=call.call_id, tool=tool)
        self._views[call.call_id] = (tool, view)
        return view

    def take_working(self, call: OpenCall, tool: str) -> list[Event]:
        """The ``memory.working`` event to commit with ``call``'s outcome (none when
        the tool that ran last put nothing)."""
        found = self._views.pop(call.call_id, None)
        if found is None:
            return []
        ran, view = found
        events = view.take(self.ex.event, call.step)
        return events if ran == tool else []

    async def end_step(self) -> None:
        """Once every call of the step has its outcome: write the promoted entries to
        long-term memory and close the step's working memory, in one transaction (a
        step with nothing promoted is closed with the next ``model.request``)."""
        from ..memory import Provenance

        ex = self.ex
        working = ex.state.working
        if not working.to_close() or not working.promotions:
            return
        step = working.step
        items = []
        for key, how in working.promotions.items():
            # redacted under its key, so a sensitive name (``db_password``) counts
            value = ex.runner.redactor.redact({key: working.entries[key][0]})[key]
            text = value if isinstance(value, str) else json.dumps(
                value, ensure_ascii=False, sort_keys=True)
            item = await self.prepare(
                text, f"working:{step}:{key}", key=how.get("as_key"),
                metadata={"working_key": key, "step": step, "call_id": how["call_id"]})
            items.append((key, how, item))

        def within(db: Any, seq: int) -> list[Event]:
            events: list[Event] = []
            promoted: list[dict[str, Any]] = []
            for i, (key, how, item) in enumerate(items):
                prov = Provenance(run_id=ex.state.run_id, step=step, seq=seq + i)
                outcome = self.store.write_in(db, dataclasses.replace(item, provenance=prov))
                promoted.append({"key": key, "handle": outcome.memory.handle})
                events.append(ex.event(EventType.MEMORY_WRITE, step, {
                    **outcome.to_payload(), "text": outcome.memory.text,
                    "promoted": {"step": step, "key": key},
                    "tool_call_id": how["call_id"]}))
            return [*events, ex.event(EventType.MEMORY_WORKING, step,
                                      working.end_payload(promoted))]

        await ex.commit([], within=within)

    def _close_working(self) -> list[Event]:
        """The event that closes the last step's working memory when nothing of it was
        promoted (it rides with the next ``model.request``)."""
        working = self.ex.state.working
        if not working.to_close() or working.promotions:
            return []
        return [self.ex.event(EventType.MEMORY_WORKING, working.step,
                              working.end_payload([]))]

    # -- the prompt -----------------------------------------------------------------

    async def _thread_history(self) -> tuple[list[Message], list[str], dict[str, str]]:
        """The thread's earlier runs' turns (task first), their refs and offloaded
        results, read up to the ``seq`` each had when this run started."""
        if self._thread is None:
            messages: list[Message] = []
            refs: list[str] = []
            handles: dict[str, str] = {}
            store = self.ex.runner.store
            for run_id, last in self.ex.state.thread_runs:
                events = [e for e in await store.read(run_id) if e.seq <= last]
                events = self.ex.runner.sealer.unseal_all(events)
                earlier = fold(run_id, events)
                start = 1 if earlier.messages and earlier.messages[0].role == "system" else 0
                open_calls: dict[str, ToolCall] = {}  # the last turn's unanswered calls
                asked = ""
                for index, m in enumerate([*earlier.messages[start:], None], start):
                    if (m is None or m.role != "tool") and open_calls:
                        # a run that died (or still runs) with calls in flight: each
                        # call gets a result saying so, so no pair is split in a prompt
                        for call in open_calls.values():
                            messages.append(Message.tool(call, _NO_RESULT))
                            refs.append(asked)
                        open_calls = {}
                    if m is None:
                        break
                    messages.append(m)
                    refs.append(message_ref(run_id, index))
                    if m.role == "assistant":
                        open_calls, asked = {c.id: c for c in m.tool_calls}, refs[-1]
                    open_calls.pop(m.tool_call_id or "", None)
                    found = earlier.offloaded.get(m.tool_call_id or "")
                    if m.role == "tool" and found is not None:
                        # by ref: call ids repeat from run to run (call_{step}_{i})
                        handles[refs[-1]] = found
            self._thread = (messages, refs, handles)
        return self._thread

    async def build(self, step: int, tools: Sequence[Any] = ()) -> BuiltContext | None:
        """The prompt for ``step``; its ``memory.recall`` and ``context.built`` events
        wait in :attr:`pending` for the step's ``model.request``. None when the
        instructions and task alone exceed the budget: the run has failed."""
        ex = self.ex
        state = ex.state
        await self.offload(step)
        thread_msgs, thread_refs, handles = await self._thread_history()
        start = 2 if state.messages and state.messages[0].role == "system" else 1
        own = state.messages[start:]
        own_refs = [message_ref(state.run_id, i) for i in range(start, len(state.messages))]
        refs = [*thread_refs, *own_refs]
        handles = dict(handles)  # offloaded results by ref: call ids repeat across runs
        for m, ref in zip(own, own_refs, strict=True):
            found = state.offloaded.get(m.tool_call_id or "") if m.role == "tool" else None
            if found is not None:
                handles[ref] = found
        journaled = await self._journaled(step)
        if journaled is not None:  # resumed after this step's request was journaled
            return self._replay(step, journaled, thread_msgs, own, refs)
        query = _query(state.task, own)
        scope = self.scope
        hits = await self.store.search(query, scope=scope, k=self.config.recall_k)
        from ..memory import ContextBudgetError

        try:
            built = self.builder().build(
                instructions=ex.agent.instructions, task=state.task,
                history=[*thread_msgs, *own], refs=refs, memories=hits,
                handles=handles, tools=tools)
        except ContextBudgetError as e:  # the head alone is over the (lowered) budget
            await ex.fail(e, "context_length_exceeded", step=step)
            return None
        payload = built.to_payload()
        recipe = dict(payload.get("recipe") or {})
        # refs are the origins of the messages (evt:RUN:SEQ): left out, so the
        # journal grows by a constant per step, not by the length of the history
        recipe.pop("refs", None)
        recipe["thread_messages"] = len(thread_msgs)
        payload["recipe"] = recipe
        self.pending = [
            *self._close_working(),
            ex.event(EventType.MEMORY_RECALL, step, {
                "query": query, "scope": scope.to_dict(),
                "hits": [{**h.to_payload(), "text": h.memory.text} for h in hits]}),
            ex.event(EventType.CONTEXT_BUILT, step, payload),
        ]
        await self._commit_pending()
        return built

    async def _commit_pending(self) -> None:
        """Commit the step's ``memory.recall`` and ``context.built`` before its prompt
        is sent: a resume then rebuilds that prompt from them (:meth:`_replay`), never
        from a search of the store as it is by then."""
        events, self.pending = self.pending, []
        await self.ex.commit(events)

    async def _journaled(self, step: int) -> tuple[Event, Event] | None:
        """The ``memory.recall`` and ``context.built`` of ``step`` when this run's
        journal already holds them (a resume after its ``model.request`` committed),
        unsealed; looked for once per execution, at its first build."""
        if self._replay_checked:
            return None
        self._replay_checked = True
        ex = self.ex
        events = await ex.runner.store.read(ex.state.run_id)
        built = next((e for e in reversed(events) if e.type == EventType.CONTEXT_BUILT), None)
        if built is None or built.step != step:
            return None
        recall = next((e for e in events if e.seq == built.seq - 1), None)
        if recall is None or recall.type != EventType.MEMORY_RECALL:
            return None
        budget = ex.state.context_budget or self.config.budget
        if (built.payload.get("recipe") or {}).get("budget") != budget:
            return None  # the budget was lowered since (a context-length error)
        recall, built = ex.runner.sealer.unseal_all([recall, built])
        return recall, built

    def _replay(self, step: int, journaled: tuple[Event, Event], thread_msgs: list[Message],
                own: Sequence[Message], refs: list[str]) -> BuiltContext:
        """The journaled prompt of ``step``, rebuilt from its recipe and the memories
        recalled with it (never a fresh search: the store may have changed since)."""
        from ..memory import ContextBuilder, Memory, Namespace

        recall, journaled_built = journaled
        recipe = dict(journaled_built.payload["recipe"])
        history = [*thread_msgs, *own][: recipe["history"]]
        recipe["refs"] = refs[: recipe["history"]]
        builder = ContextBuilder(
            budget=int(recipe["budget"]), counter=self.counter,
            large_result_tokens=int(recipe["large_result_tokens"]),
            summary_tokens=int(recipe.get("summary_tokens") or 0))
        memories = {str(h["handle"]): Memory(handle=str(h["handle"]), text=str(h["text"]),
                                             namespace=Namespace())
                    for h in recall.payload.get("hits") or ()}
        built = builder.replay(recipe, instructions=self.ex.agent.instructions,
                               task=self.ex.state.task, history=history, memories=memories)
        self.pending = self._close_working()  # rides with the model.request
        return built

    def request_payload(self, messages: Sequence[Message], provider: str,
                        model: str) -> dict[str, Any]:
        """The ``model.request`` payload of a built prompt, in the usual form: the
        prefix shared with the previous request, then the new messages, each a
        reference to the event of this run that holds it when it is sent unchanged."""
        state = self.ex.state
        origin = {id(m): o for m, o in zip(state.messages, state.origins, strict=True) if o}
        prefix = 0
        for a, b in zip(self._last, messages, strict=False):
            if a != b:
                break
            prefix += 1
        self._last = tuple(messages)
        return {"provider": provider, "model": model, "prefix": prefix, "new": [
            {"event": origin[id(m)]} if id(m) in origin else m.model_dump(exclude_defaults=True)
            for m in messages[prefix:]], "context": "built"}

    async def shrink(self, step: int, error: ContextLengthError) -> bool:
        """Lower the budget by a quarter after a context-length error (journaled);
        False once it reached :data:`MIN_BUDGET`."""
        current = self.ex.state.context_budget or self.config.budget
        if current <= MIN_BUDGET:
            return False
        lower = max(MIN_BUDGET, current * 3 // 4)
        await self.ex.commit([self.ex.event(EventType.DECISION, step, {
            "decision": "context_budget",
            "options": ["lower_budget", "fail"], "chosen": "lower_budget",
            "reason": error.message, "budget": lower, "was": current,
        })])
        return True

    # -- tools ------------------------------------------------------------------------

    async def resolve(self, handle: str) -> str | None:
        """The full text of a masked message, by its handle: ``evt:RUN:mINDEX`` (the
        run's INDEXth message), or ``evt:RUN:SEQ`` (the event holding it; journals
        before handles by index)."""
        parts = handle.split(":")
        if len(parts) != 3 or parts[0] != "evt":
            return None
        run_id, where = parts[1], parts[2]
        state = self.ex.state
        allowed = {state.run_id: None, **{r: last for r, last in state.thread_runs}}
        if run_id not in allowed:
            return None  # another thread's journal is not this run's to read
        if where[:1] == "m" and where[1:].isdigit():
            index = int(where[1:])
            if run_id == state.run_id:
                messages = state.messages
            else:
                last = allowed[run_id]
                events = [e for e in await self.ex.runner.store.read(run_id)
                          if last is None or e.seq <= last]
                messages = fold(run_id, self.ex.runner.sealer.unseal_all(events)).messages
            if index >= len(messages) or messages[index].role == "system":
                return None
            return messages[index].content or ""
        if not where.isdigit():
            return None
        seq = int(where)
        events = await self.ex.runner.store.read(run_id, after_seq=max(0, seq - 1))
        if not events or events[0].seq != seq:
            return None
        event = self.ex.runner.sealer.unseal_all(events[:1])[0]
        if event.type == EventType.RUN_STARTED:
            return str(event.payload.get("task", ""))
        message = message_of(event)
        return None if message is None else (message.content or "")

    def tools(self) -> list[Tool]:
        """``remember``, ``recall``, ``expand`` and ``forget``, journaled."""
        from ..memory import memory_tools

        memory = self

        async def write(text: str, key: str | None, ctx: ToolContext) -> WriteOutcome:
            item = await memory.prepare(text, ctx.call_id, key=key)
            return await memory.write(ctx.step, item, tool_call_id=ctx.call_id)

        async def on_recall(query: str, scope: Namespace, hits: list[Hit],
                            ctx: ToolContext) -> None:
            await memory.ex.commit([memory.ex.event(EventType.MEMORY_RECALL, ctx.step, {
                "query": query, "scope": scope.to_dict(), "tool_call_id": ctx.call_id,
                "hits": [{**h.to_payload(), "text": h.memory.text} for h in hits]})])

        async def forget(handle: str, ctx: ToolContext) -> bool:
            return await memory.forget(ctx.step, handle, tool_call_id=ctx.call_id)

        return memory_tools(memory.store, memory.namespace, scope=memory.scope,
                            resolve=memory.resolve, k=memory.config.recall_k, write=write,
                            on_recall=on_recall, forget=forget)

    def close(self) -> None:
        if self.owned:
            self.store.close()


def message_ref(run_id: str, index: int) -> str:
    """The handle of a run's ``index``th message (``evt:RUN:mINDEX``): its position in
    the fold, which events a resume adds (``run.resumed``...) do not move."""
    return f"evt:{run_id}:m{index}"


#: The result a thread's earlier run left for a call it never finished.
_NO_RESULT = "[no result: the run ended before this call finished]"

#: Tools whose results say nothing about what to recall next.
_MEMORY_TOOLS = frozenset({"remember", "recall", "expand", "forget"})


def _query(task: str, messages: Sequence[Message]) -> str:
    """What to recall for the next step: the last user or tool message (other than a
    memory tool's), else the task."""
    for m in reversed(messages):
        if m.role in ("user", "tool") and m.content and m.name not in _MEMORY_TOOLS:
            return m.content[:2000]
    return task


def _valid_text(text: str) -> str:
    r"""``text`` storable as UTF-8: lone surrogates (a tool's ``json.loads`` of
    ``"\\ud800"``) become U+FFFD, as ``tether.memory`` stores them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _needs_sqlite() -> Exception:
    from ..core import ConfigurationError

    return ConfigurationError(
        "an agent with memory and no memory store needs a SQLite journal (the memory "
        "tables share its file)",
        hint="pass MemoryConfig(store=SQLiteMemoryStore(path)), or use a SQLiteStore")


