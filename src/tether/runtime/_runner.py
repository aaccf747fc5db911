"""The Runner: starts, resumes and settles runs against a store."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..core import (
    JOURNAL_FORMAT,
    BudgetPayload,
    Clock,
    ConfigurationError,
    DecisionPayload,
    Event,
    EventType,
    IdSource,
    QuarantinedError,
    Redactor,
    RunLeasedError,
    RunNeedsAttentionPayload,
    RunQuarantinedPayload,
    RunResumedPayload,
    RunStartedPayload,
    RunStatus,
    SealedValueError,
    Sealer,
    SealKey,
    SystemClock,
    SystemIds,
    TetherError,
    ToolResultPayload,
    UsageError,
    new_id,
)
from ..models import DEFAULT_PRICES, Model, PriceTable
from ..store import Lease, Store, open_store
from ..tools import still_running
from ._agent import Agent
from ._breaker import BreakerBoard
from ._budget import Budget
from ._execution import Execution, result_of
from ._journal import Journal
from ._lease import owner_alive_here, owner_dead, owner_id
from ._memory import thread_key, thread_runs
from ._result import RunResult
from ._spec import load_agent
from ._state import RunState, check_format, fold
from ._stream import EventStream, Observer
from ._tool_call import tool_span
from ._toolsets import waiting_calls

_log = logging.getLogger("tether")


def _selection(spec: Model | str | None) -> str | None:
    """The selection string a model spec stands for now (None: a Model object)."""
    if isinstance(spec, Model):
        return None
    return spec if spec is not None else (os.environ.get("TETHER_MODEL", "").strip() or "local")
#: Called with a run's whole journal when it stops; returns ``finding`` payloads.
Reviewer = Callable[[Sequence[Event]], list[dict[str, Any]]]


class Runner:
    """Runs agents durably against a store.

    Args:
        store: Where runs are journaled: a Store, or the path of a SQLite file;
            default :func:`~tether.store.open_store`.
        clock: Wall and monotonic time, and every wait of the step loop (retry backoff,
            breaker probes, journaled waits): injected so tests skip time and replay is
            exact (``tether.testing.FakeClock``). Leases are kept on real time: the
            store's clock, shared with other processes.
        observers: Called with the committed events (live logs, exporters), each from a
            thread of its own fed by :attr:`stream`: a slow or failing observer never
            holds up a commit or the run.
        stream: The live stream of committed events and deltas
            (:class:`~tether.runtime.EventStream`); subscribe with ``stream.subscribe()``.
        redactor: Scrubs every payload before it is committed, so secrets never reach
            the journal or any observer; default :meth:`Redactor.from_env` (known key
            formats, auth headers, passwords in URLs, secret-looking assignments and
            keys, the values of secret environment variables). What it replaces is
            sealed (encrypted) in the journal: the run itself, live or resumed, sees
            the original values.
        seal_key: The key redacted values are sealed with; default
            :class:`~tether.core.SealKey` (``TETHER_SEAL_KEY``, else the key file
            ``TETHER_SEAL_KEY_FILE``, default ``~/.config/tether/seal.key``).
        prices: The price table costs are computed from; its version is recorded.
        breakers: Circuit breakers shared by the runs this Runner drives.
        rng: Source of retry jitter.
        ids: Source of new run ids; default :class:`~tether.core.SystemIds` on
            ``clock`` (``tether.testing.SequentialIds`` makes them predictable).
        reviewers: Run on a run's journal whenever it stops (completed, failed, needs
            attention); what they return is committed as ``finding`` events. The CLI
            passes the doctor (:func:`tether.observe.finding_payloads`).
        lease_ttl_s: How long a run's lease outlives its last commit or heartbeat: the
            wait before another machine may take over a run whose driver died (a
            driver on this host that no longer exists is taken over at once).
    """

    def __init__(
        self,
        store: Store | str | os.PathLike[str] | None = None,
        *,
        clock: Clock | None = None,
        observers: Sequence[Observer] = (),
        redactor: Redactor | None = None,
        prices: PriceTable = DEFAULT_PRICES,
        breakers: BreakerBoard | None = None,
        rng: random.Random | None = None,
        ids: IdSource | None = None,
        reviewers: Sequence[Reviewer] = (),
        seal_key: SealKey | None = None,
        lease_ttl_s: float = 30.0,
        stream: EventStream | None = None,
    ) -> None:
        self.lease_ttl_s = lease_ttl_s
        if store is None or isinstance(store, str | os.PathLike):
            store = open_store(store)  # a path names a SQLite file
        elif not callable(getattr(store, "append", None)):
            raise ConfigurationError(
                f"Runner(store=...) takes a Store or a database path, not a "
                f"{type(store).__name__}",
                hint="e.g. Runner(\"agents.db\") or Runner(SQLiteStore(\"agents.db\"))",
            )
        self.store = store
        self.clock = clock or SystemClock()
        self.observers = list(observers)
        self.stream = stream if stream is not None else EventStream()
        for observer in self.observers:
            self.stream.observe(observer)
        self.redactor = redactor if redactor is not None else Redactor.from_env()
        self.sealer = Sealer(self.redactor, seal_key)
        self.prices = prices
        self.breakers = breakers or BreakerBoard()
        self.rng = rng or random.Random()
        self.ids: IdSource = ids or SystemIds(self.clock)
        self.reviewers = list(reviewers)
        self._live: set[Execution] = set()
        #: Leases kept after a drive ended while a call's thread it gave up on still runs.
        self._lingering: set[asyncio.Task[None]] = set()

    def notify(self, events: Sequence[Event]) -> None:
        """Publish committed ``events`` (as the journal shows them) on :attr:`stream`:
        never blocks, never raises (see :class:`~tether.runtime.EventStream`)."""
        self.stream.publish(events)

    def interrupt(self) -> None:
        """Stop every run this Runner drives, cleanly (what Ctrl-C does in the CLI).

        Outcomes that finished are committed, calls in flight get
        ``Policy.tool_stop_grace_s`` to stop, and each run is journaled as ``paused``;
        ``resume`` continues it (calls left in doubt follow their tools' policies).
        """
        for execution in list(self._live):
            execution.interrupt()

    async def take_lease(self, events: Sequence[Event]) -> Lease:
        """Commit ``events`` and take their run's lease: at once if it is free or its
        owner is a process of this host that died, else ``RunLeasedError``."""
        owner = owner_id()
        held = await self.store.lease(events[0].run_id)
        # Lapsed (a released lease has expires_at 0) but its owner lives on this host:
        # stopped (Ctrl-Z) or stalled, it may still finish its call; not taken over.
        if (held is not None and 0 < held.expires_at <= time.time()
                and owner_alive_here(held.owner)):
            raise RunLeasedError(
                f"run {held.run_id} is being driven by {held.owner}, a live process of "
                f"this host whose lease lapsed (stopped or stalled?)",
                hint="continue that process (fg) and let it finish, or end it; its "
                     "run is taken over once it is gone",
                run_id=held.run_id, owner=held.owner, expires_at=held.expires_at)
        try:
            return await self.store.acquire(events, owner=owner, ttl_s=self.lease_ttl_s)
        except RunLeasedError as e:
            if not owner_dead(e.owner):
                raise
            return await self.store.acquire(events, owner=owner, ttl_s=self.lease_ttl_s,
                                            takeover=e.owner)

    async def _drive(self, execution: Execution, *, in_doubt: bool) -> RunResult:
        self._live.add(execution)
        heartbeat = asyncio.create_task(self._heartbeat(execution))
        try:
            return await execution.drive(in_doubt=in_doubt)
        finally:
            heartbeat.cancel()
            self._live.discard(execution)
            if not await self.stream.flush():
                _log.warning("run %s: an observer is still behind after %g s; it goes on "
                             "in its thread", execution.state.run_id, self.stream.flush_s)
            if _threads_running(execution.journal) and execution.lease is not None:
                task = asyncio.create_task(self._linger(execution.journal))
                self._lingering.add(task)
                task.add_done_callback(self._lingering.discard)
            else:
                await self._release(execution.journal)

    async def _linger(self, journal: Journal) -> None:
        """Keep the lease of a run that stopped while a call it gave up on still runs in
        a thread here, until the thread ends: no other process may reconcile or run that
        call again meanwhile (it would find no effect yet and repeat it)."""
        renewed = time.monotonic()
        try:
            while journal.lease is not None and _threads_running(journal):
                await asyncio.sleep(0.05)
                if time.monotonic() - renewed >= self.lease_ttl_s / 3:
                    await self.store.renew(journal.lease)
                    renewed = time.monotonic()
        except TetherError as e:  # lost or the store closed: it lapses by itself
            _log.warning("run %s: lease kept for a running call: %s",
                         journal.state.run_id, e.message)
            journal.lease = None
        finally:
            await self._release(journal)

    async def _heartbeat(self, execution: Execution) -> None:
        """Renew the lease while a long model or tool call keeps the run from committing;
        once it is lost, stop taking new work (the next commit would be refused).
        On real time, not the injected clock: the lease expires on the store's clock."""
        journal = execution.journal
        while journal.lease is not None:
            await asyncio.sleep(self.lease_ttl_s / 3)
            try:
                await self.store.renew(journal.lease)
            except TetherError as e:
                _log.error("run %s: %s", journal.state.run_id, e.message)
                execution.interrupt()
                return

    async def _release(self, journal: Journal) -> None:
        if journal.lease is not None:
            try:
                await self.store.release(journal.lease)
            except TetherError as e:  # it lapses by itself; say why it was not released
                _log.warning("run %s: lease not released: %s", journal.state.run_id,
                             e.message)
            journal.lease = None

    async def run(
        self, agent: Agent, task: str, *, agent_spec: str | None = None,
        run_id: str | None = None, parent: Mapping[str, Any] | None = None,
        thread: str | None = None,
    ) -> RunResult:
        """Start a run of ``agent`` on ``task`` and drive it to an end.

        Args:
            agent: What to run (model, tools, instructions, budget, policy).
            task: The user's request, the run's first user message.
            agent_spec: ``module:attribute`` of the agent, recorded so that
                ``tether resume`` in another process can load it.
            run_id: The run's id; default a new one from the Runner's id source. An id
                already in the store is refused (``ConcurrentWriteError``): use
                :meth:`resume` to continue a run.
            parent: For a sub-run (``tether.orchestration``): ``parent_run_id`` and the
                delegation's fields, recorded in ``run.started``.
            thread: Continue this conversation: an agent with memory sees the earlier
                runs of the thread (as they were when this run started) and the
                thread's memories, within its budget. Recorded in ``run.started``.
        """
        if thread is not None and (not isinstance(thread, str) or not thread.strip()
                                   or len(thread) > 200):
            raise UsageError(f"a thread is a non-empty name of at most 200 characters, "
                             f"not {thread[:60] if isinstance(thread, str) else thread!r}",
                             hint='pass thread="support-ada" (any stable name)')
        execution = Execution(self, agent,
                              RunState(run_id=run_id or new_id("run_", self.ids)))
        async with execution.tools:  # entered for the drive, exited however it ends
            return await self._start(execution, agent, task, agent_spec, parent, thread)

    async def _start(
        self, execution: Execution, agent: Agent, task: str, agent_spec: str | None,
        parent: Mapping[str, Any] | None, thread: str | None,
    ) -> RunResult:
        model = execution.models[0]
        threaded: dict[str, Any] = {}
        if thread is not None:
            key = thread_key(thread, agent=agent.name,
                             user=agent.memory.user if agent.memory is not None else None)
            threaded = {"thread": thread, "thread_key": key,
                        "thread_runs": await thread_runs(self.store, key)}
        await execution.commit([execution.event(EventType.RUN_STARTED, 0, RunStartedPayload(
            **threaded,
            agent=agent.name,
            agent_spec=agent_spec,
            task=task,
            instructions=agent.instructions,
            provider=model.provider,
            model=model.model_name,
            fallbacks=[f"{m.provider}:{m.model_name}" for m in execution.models[1:]],
            selection={"model": _selection(agent.model),
                       "fallbacks": [_selection(f) for f in agent.fallbacks]},
            tools=[spec.model_dump() for spec in execution.tools.specs],
            price_table=self.prices.version,
            # The limits the run started with; a resume keeps them (budget events raise them).
            budget=dataclasses.asdict(agent.budget),
            **(parent or {}),
            format=JOURNAL_FORMAT,
        ).dump())])
        return await self._drive(execution, in_doubt=False)

    async def resume(
        self, run_id: str, agent: Agent | None = None, *,
        model: str | None = None,
        budget: Budget | Mapping[str, Any] | None = None,
        release: bool = False,
    ) -> RunResult:
        """Continue a run from its journal, in this process.

        Args:
            run_id: The run to continue (``RunNotFoundError`` if the store has none).
            agent: Defaults to the one recorded by ``agent_spec`` when the run started.
            model: A model selection string to continue on instead of the one the run
                started with (journaled as a ``decision``). By default the run keeps the
                model and fallbacks it started with, whatever ``$TETHER_MODEL`` says now.
            budget: Raised limits, as a whole :class:`Budget` or as ``{limit: value}``
                (journaled, so they hold for later resumes too); needed to continue a
                run that stopped on ``budget_exceeded``.
            release: Take a quarantined run out of quarantine (once whatever crashed
                the process on recovery is fixed) and continue it.

        A completed run, or a quarantined one without ``release``, is returned as it is.
        """
        journal = await self.store.read(run_id)
        state = fold(run_id, journal)
        check_format(state)
        released = release and state.status == RunStatus.QUARANTINED
        if state.status.is_final and not released:
            return result_of(state)
        try:  # the run goes on from what it saw, not from the redacted journal
            opened = self.sealer.unseal_all(journal)
        except SealedValueError as e:
            return await self._sealed(state, e)
        if any(a is not b for a, b in zip(opened, journal, strict=True)):
            state = fold(run_id, opened)
        if agent is None:
            if not state.agent_spec:
                raise UsageError(
                    f"run {run_id} did not record where its agent is defined",
                    hint="pass the agent: Runner.resume(run_id, agent)",
                )
            agent = load_agent(state.agent_spec)
        agent, decision = _keep_selection(agent, state.selection, model)
        execution = Execution(self, agent, state)
        if state.status == RunStatus.RUNNING and state.recoveries >= agent.max_recoveries:
            try:
                error = QuarantinedError(
                    f"the run was resumed {state.recoveries} times without making progress",
                    hint="it crashes the process on recovery: inspect it with `tether show`, "
                         "fix the cause, then `tether resume RUN_ID --release`",
                    recoveries=state.recoveries, run_id=run_id, step=state.step)
                await execution.commit([execution.event(
                    EventType.RUN_QUARANTINED, state.step, RunQuarantinedPayload(
                        error=error.to_dict(), recoveries=state.recoveries).dump())])
            finally:
                await self._release(execution.journal)
            return result_of(execution.state)
        events = [execution.event(EventType.RUN_RESUMED, state.step, RunResumedPayload(
            attempt=state.recoveries + 1,
            from_status=str(state.status),
        ).dump())]
        if decision:
            events.append(execution.event(EventType.DECISION, state.step, decision))
        if budget is not None:
            raised = (dict(budget) if isinstance(budget, Mapping) else
                      {k: v for k, v in vars(budget).items() if v != getattr(agent.budget, k)})
            try:
                agent.budget.raised({**state.budget_overrides, **raised})
            except TypeError as e:  # checked before anything is journaled
                raise ConfigurationError(
                    f"not a budget limit: {e}",
                    hint="limits: max_steps, max_input_tokens, max_output_tokens, "
                         "max_cost_usd, max_seconds",
                ) from e
            events.append(execution.event(EventType.BUDGET, state.step, BudgetPayload(
                raised=raised, reason="resumed with a raised budget",
            ).dump()))
        execution.tools.held, execution.tools.approved = waiting_calls(journal)
        async with execution.tools:  # entered again on every resume
            await execution.commit(events)
            return await self._drive(execution, in_doubt=True)

    async def _sealed(self, state: RunState, error: SealedValueError) -> RunResult:
        """Stop a run whose journal cannot be unsealed, saying why and what to do."""
        journal = Journal(self, state)
        try:
            await journal.commit([journal.event(
                EventType.RUN_NEEDS_ATTENTION, state.step, RunNeedsAttentionPayload(
                    error=error.to_dict(), reason="sealed_values").dump())])
        finally:
            await self._release(journal)
        return result_of(journal.state)

    async def resolve(self, run_id: str, call_id: str, *, result: str) -> None:
        """Settle a call in doubt by hand: record ``result`` as its outcome.

        Use it when a run is ``needs_attention``: check in the outside world whether
        the call took effect, then record what it returned (or a note that it did not
        happen), and :meth:`resume` the run.
        """
        state = fold(run_id, await self.store.read(run_id))
        check_format(state)  # a newer Tether's journal is read, never written to
        call = state.open_calls.get(call_id)
        if call is None:
            raise UsageError(
                f"run {run_id} has no call in doubt with id {call_id!r}",
                hint=f"see the open calls with `tether show {run_id}`",
            )
        journal = Journal(self, state)
        try:  # refused (RunLeasedError) while another process drives the run
            await journal.commit([journal.event(EventType.TOOL_RESULT, call.step,
                                                ToolResultPayload(
                call_id=call.call_id, tool=call.tool, content=result, resolved_by="user",
            ).dump(), span=tool_span(call))])
        finally:
            await self._release(journal)

    async def approve(self, run_id: str, call_id: str, *, deny: bool = False,
                      reason: str = "") -> None:
        """Decide a call that waits for approval (the run is ``needs_attention``):
        approved, it runs once when the run is resumed; denied, it does not run and the
        model is told (``reason`` too). Journaled as a ``decision`` (``approval``).

        Raises:
            UsageError: the run has no call waiting for approval with this id.
            RunLeasedError: another process drives the run (nothing is written).
        """
        journal_events = await self.store.read(run_id)
        state = fold(run_id, journal_events)
        check_format(state)  # a newer Tether's journal is read, never written to
        held, approved = waiting_calls(journal_events)
        call = state.open_calls.get(call_id)
        if call is None or held.get(call_id) != "approval" or call_id in approved:
            waiting = sorted(c for c, why in held.items()
                             if why == "approval" and c not in approved)
            raise UsageError(
                f"run {run_id} has no call waiting for approval with id {call_id!r}",
                hint=f"calls waiting: {', '.join(waiting)}" if waiting else
                     f"none waits; see `tether show {run_id}`")
        chosen = "deny" if deny else "approve"
        journal = Journal(self, state)
        events = [journal.event(EventType.DECISION, state.step, DecisionPayload(
            decision="approval", call_id=call_id, tool=call.tool,
            options=["approve", "deny"], chosen=chosen,
            reason=reason or ("approved by a human" if not deny else "denied by a human"),
        ).dump(), span=tool_span(call))]
        if deny:
            note = f"A human denied this call of {call.tool}" + (f": {reason}" if reason else
                                                                  ".")
            # A dict, not the model: its fields' order (content, denied, then error) is
            # not the model's, and the stored bytes stay as they were.
            events.append(journal.event(EventType.TOOL_ERROR, call.step, {
                "call_id": call_id, "tool": call.tool, "content": note, "denied": True,
                "error": {"type": "ApprovalDenied", "message": note},
            }, span=tool_span(call)))
        try:  # refused (RunLeasedError) while another process drives the run
            await journal.commit(events)
        finally:
            await self._release(journal)

    def run_sync(self, agent: Agent, task: str, **kwargs: Any) -> RunResult:
        """:meth:`run`, for code without an event loop."""
        _no_running_loop("run")
        return asyncio.run(self.run(agent, task, **kwargs))

    def resume_sync(
        self, run_id: str, agent: Agent | None = None, *, model: str | None = None,
        budget: Budget | Mapping[str, Any] | None = None, release: bool = False,
    ) -> RunResult:
        """:meth:`resume`, for code without an event loop."""
        _no_running_loop("resume")
        return asyncio.run(self.resume(run_id, agent, model=model, budget=budget,
                                       release=release))


def _no_running_loop(method: str) -> None:
    """The ``*_sync`` facade cannot run inside an event loop (a notebook, async code)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise UsageError(
        f"Runner.{method}_sync() was called inside a running event loop",
        hint=f"use `await runner.{method}(...)` there (notebooks and async code run one)",
    )


def _threads_running(journal: Journal) -> bool:
    """Whether a call of the run, given up on, still runs in a thread of this process."""
    run_id = journal.state.run_id
    return any(still_running(run_id, c) for c in journal.state.open_calls)


def _keep_selection(
    agent: Agent, recorded: Mapping[str, Any] | None, model: str | None
) -> tuple[Agent, dict[str, Any] | None]:
    """The agent to resume with: on ``model`` if given (and a decision saying so), else
    on the selection strings the run started with, where the agent names models by
    string (Model objects are code: the agent's own are used)."""
    recorded = recorded or {}
    if model is not None:
        return dataclasses.replace(agent, model=model), {
            "decision": "model", "options": [recorded.get("model"), model], "chosen": model,
            "reason": "resumed on another model, as asked",
        }
    if not isinstance(agent.model, Model) and recorded.get("model"):
        fallbacks = [f if isinstance(f, Model) or not was else was for f, was in
                     zip(agent.fallbacks, recorded.get("fallbacks") or [], strict=False)]
        fallbacks += list(agent.fallbacks[len(fallbacks):])
        return dataclasses.replace(agent, model=recorded["model"], fallbacks=fallbacks), None
    return agent, None
