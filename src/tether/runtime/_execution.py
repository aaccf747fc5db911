"""One process's drive of one run: the step loop (observe, decide, act, record).

A step commits in two kinds of transaction (see ``docs/architecture.md``):

1. the model request and response together with the intents of the tool calls it
   asks for (or, with no calls, the run's completion);
2. each tool call's outcome, on its own, as soon as the call ends.

Resuming folds the journal and continues from there: a committed model response is
never requested again and a tool call with a committed outcome never runs again. A
call with an intent but no outcome is *in doubt* and follows its tool's policy.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from ..core import (
    BudgetExceededError,
    ConfigurationError,
    Event,
    EventType,
    Message,
    ModelBehaviorError,
    RunStatus,
    TetherError,
    ToolCall,
    UsageError,
    visible,
)
from ..models import Model, ModelRequest, ModelResponse
from ..store import Lease, SQLiteStore
from ..tools import FunctionToolset, still_running
from ._agent import Agent
from ._budget import Budget
from ._memory import RunMemory
from ._model_call import call_model, request_payload
from ._policy import truncation_note
from ._result import RunResult
from ._state import OpenCall, RunState
from ._tool_call import InDoubt, reconcile, run_tool, tool_span
from ._toolsets import RunTools, attention

if TYPE_CHECKING:
    from ._runner import Runner


def _resolve_model(model: Model | str | None) -> Model:
    if model is None or isinstance(model, str):
        from ..models import select_model

        return select_model(model)
    return model


def _dump(message: Message) -> dict[str, Any]:
    return message.model_dump(exclude_defaults=True)


def result_of(state: RunState) -> RunResult:
    return RunResult(
        run_id=state.run_id, status=state.status, output=state.output, steps=state.step,
        usage=state.usage, cost_usd=state.cost_usd,
        error=None if state.error is None else TetherError.from_dict(state.error),
    )


class Journal:
    """Appends a run's events: numbers them, seals them, commits them, folds them into
    the state, and hands them to the observers. Everything a run writes goes through
    :meth:`commit`."""

    def __init__(self, runner: Runner, state: RunState) -> None:
        self.runner = runner
        self.state = state
        self.lock = asyncio.Lock()
        #: The run's lease, taken by the first commit; every later commit is fenced by it.
        self.lease: Lease | None = None

    def event(
        self, kind: EventType, step: int, payload: dict[str, Any], *,
        span: str | None = None, duration_ms: float | None = None,
    ) -> Event:
        """An event to commit; ``seq`` is assigned by :meth:`commit`."""
        parent = None if span is None else (f"s{step}" if "." in span else "run")
        return Event(run_id=self.state.run_id, seq=0, type=kind, step=step,
                     ts=self.runner.clock.now(), payload=payload, span_id=span,
                     parent_span_id=parent, duration_ms=duration_ms)

    async def commit(self, events: list[Event], *, within: Within | None = None) -> None:
        """Append ``events`` in one transaction (redacted, originals sealed), then fold
        the originals into the state; observers get what the journal shows.

        ``within`` (a SQLite store only) runs inside that transaction with its
        connection and the ``seq`` that follows ``events``; the events it returns
        (a ``memory.write`` for the rows it wrote) are numbered, sealed and committed
        with them.

        The first commit takes the run's lease (``RunLeasedError`` if another live
        process drives the run); every later one is fenced by it (``LeaseLostError``
        once another process took the run over: nothing is written)."""
        seal = self.runner.sealer.seal
        async with self.lock:
            first = self.state.seq + 1
            numbered = _numbered(events, first)
            stored = [seal(e) for e in numbered]
            extra: list[Event] = []
            if within is not None:
                if self.lease is None:
                    raise UsageError("a commit with work inside it needs the run's lease",
                                     hint="commit run.started first")

                def hook(db: Any) -> list[Event]:
                    extra[:] = _numbered(within(db, first + len(events)),
                                         first + len(events))
                    return [seal(e) for e in extra]

                store = self.runner.store
                if not isinstance(store, SQLiteStore):
                    raise ConfigurationError(
                        "memory writes need a SQLite store (they commit with their events)",
                        hint="run agents with memory on the default SQLiteStore")
                await store.append(stored, lease=self.lease, within=hook)
            elif self.lease is None:
                self.lease = await self.runner.take_lease(stored)
            else:
                await self.runner.store.append(stored, lease=self.lease)
            for e in [*numbered, *extra]:
                self.state.apply(e)
        if self.runner.stream.subscribed:
            shown = [*stored, *(seal(e) for e in extra)]
            self.runner.notify([visible(e) for e in shown])


def _numbered(events: Sequence[Event], first: int) -> list[Event]:
    return [
        Event(run_id=e.run_id, seq=first + i, type=e.type, step=e.step, ts=e.ts,
              payload=e.payload, span_id=e.span_id, parent_span_id=e.parent_span_id,
              duration_ms=e.duration_ms)
        for i, e in enumerate(events)
    ]


#: Work inside a commit's transaction: gets the connection and the next free ``seq``,
#: returns the events to commit with the rows it wrote.
Within = Callable[[Any, int], list[Event]]


class Execution(Journal):
    """Drives one run in this process; all it knows is folded from the journal."""

    def __init__(self, runner: Runner, agent: Agent, state: RunState) -> None:
        super().__init__(runner, state)
        self.agent = agent
        #: Done once the run is asked to stop (Ctrl-C): no new work starts, calls in
        #: flight get ``Policy.tool_stop_grace_s`` to end, then the run is paused.
        self.interrupted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._model_task: asyncio.Task[Any] | None = None
        #: Set for an agent with memory: builds each prompt (see ``_memory.py``).
        self.memory: RunMemory | None = None
        toolsets = agent.toolsets()
        if agent.memory is not None:
            self.memory = RunMemory(self, agent.memory)
            if agent.memory.tools:
                toolsets.append(FunctionToolset(self.memory.tools()))
        #: The agent's toolsets, entered for a drive (``async with``), listed each step.
        self.tools = RunTools(self, toolsets)
        specs = (agent.model, *agent.fallbacks)
        self.models: list[Model] = [_resolve_model(m) for m in specs]
        #: Models this execution built from selection strings: it closes them when done.
        self.owned = [m for m, spec in zip(self.models, specs, strict=True)
                      if not isinstance(spec, Model)]

    def interrupt(self) -> None:
        """Stop taking new work: a model call in flight is abandoned (it has no effect),
        tool calls in flight are asked to stop, every outcome that finished is
        committed, and the run is paused (``run.paused``) for ``tether resume``."""
        if not self.interrupted.done():
            self.interrupted.set_result(None)
        if self._model_task is not None:
            self._model_task.cancel()

    # -- journal --------------------------------------------------------------------

    async def fail(
        self, error: TetherError, reason: str, *, step: int | None = None,
        events: Sequence[Event] = (), **extra: Any,
    ) -> None:
        """Commit ``run.failed`` (after ``events``, in the same transaction) at ``step``:
        the step whose model call failed, else the last completed one."""
        step = self.state.step if step is None else step
        error.run_id, error.step = self.state.run_id, step
        await self.commit([*events, self.event(EventType.RUN_FAILED, step, {
            "reason": reason, "error": error.to_dict(), **extra,
        })])

    # -- budgets and deadlines --------------------------------------------------------

    @property
    def budget(self) -> Budget:
        overrides = self.state.budget_overrides
        return self.agent.budget.raised(overrides) if overrides else self.agent.budget

    def remaining_s(self) -> float | None:
        """Seconds left before the run's deadline, if it has one."""
        deadline = self.budget.deadline(self.state.started_at)
        return None if deadline is None else deadline - self.runner.clock.now()

    def deadline_error(self) -> BudgetExceededError:
        allowed = self.budget.max_seconds or 0.0
        return BudgetExceededError(
            f"the run reached its max_seconds budget of {allowed:g} s",
            hint="resume it with a raised budget: tether resume RUN_ID --budget max_seconds=...",
            limit="max_seconds", used=self.runner.clock.now() - self.state.started_at,
            allowed=allowed,
        )

    def check_deadline(self, delay: float, error: BaseException) -> None:
        """Refuse to wait ``delay`` seconds for a retry that would end past the deadline."""
        remaining = self.remaining_s()
        if remaining is not None and delay >= remaining:
            raise self.deadline_error() from error

    def check_budgets(self) -> None:
        state = self.state
        self.budget.check(steps=state.step + state.subrun_steps,
                          usage=state.usage + state.subrun_usage,
                          cost_usd=state.cost_usd + state.subrun_cost_usd,
                          elapsed_s=self.runner.clock.now() - state.started_at)
        policy = self.agent.policy
        if (state.repairs_consecutive > policy.max_consecutive_repairs
                or state.repairs_total > policy.max_repairs):
            raise ModelBehaviorError(
                f"the model produced {state.repairs_consecutive} malformed responses in a "
                f"row ({state.repairs_total} in the run); the repair budget "
                f"({policy.max_consecutive_repairs} in a row, {policy.max_repairs} in all) "
                "is spent",
                hint="use a stronger model, simplify the tools' schemas, or raise "
                     "Policy.max_consecutive_repairs / max_repairs",
                output=json.dumps(state.last_malformed),
            )

    # -- the loop -------------------------------------------------------------------

    async def drive(self, *, in_doubt: bool) -> RunResult:
        try:
            try:
                result = await self._drive(in_doubt=in_doubt)
            except BaseException as e:
                error = _first(e) if isinstance(e, BaseExceptionGroup) else e
                if isinstance(error, KeyboardInterrupt | SystemExit | asyncio.CancelledError):
                    raise
                if isinstance(error, TetherError):
                    raise error from None  # one typed error, never a group
                # A bug or an exotic exception: the run fails with it, it is not left
                # `running`; if even that cannot be committed, the store's error surfaces.
                await self.fail(TetherError(
                    f"unexpected {type(error).__name__}: {error}",
                    hint="this is a bug in a tool, a model adapter or Tether; report it "
                         "with `tether show RUN_ID --json`"), "internal_error")
                result = result_of(self.state)
            if self.runner.reviewers:
                await self.review()
            return result
        finally:
            for model in self.owned:
                close = getattr(model, "aclose", None)
                if close is not None:
                    await close()
            if self.memory is not None:
                self.memory.close()

    async def review(self) -> None:
        """Run the reviewers (the doctor) on the whole journal; commit their findings."""
        events = [visible(e) for e in await self.runner.store.read(self.state.run_id)]
        # A finding already journaled (an earlier stop of this run) is not journaled again.
        seen = {json.dumps(e.payload, sort_keys=True, default=str) for e in events
                if e.type == EventType.FINDING}
        findings = []
        for p in (p for reviewer in self.runner.reviewers for p in reviewer(events)):
            key = json.dumps(p, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                findings.append(p)
        if findings:
            await self.commit([self.event(EventType.FINDING, self.state.step, p)
                               for p in findings])

    async def _drive(self, *, in_doubt: bool) -> RunResult:
        state = self.state
        while state.status == RunStatus.RUNNING:
            if self.interrupted.done():
                await self.commit([self.event(EventType.RUN_PAUSED, state.step, {
                    "reason": "interrupted",
                    "open_calls": sorted(state.open_calls),
                })])
                break
            if state.open_calls:
                await self.settle(list(state.open_calls.values()), in_doubt=in_doubt)
                in_doubt = False
                continue  # settling may have stopped, failed or interrupted the run
            if self.memory is not None:  # the step ended: promote its working memory
                await self.memory.end_step()
            try:
                self.check_budgets()
            except BudgetExceededError as e:
                await self.fail(e, "budget_exceeded")
                break
            except ModelBehaviorError as e:
                await self.fail(e, "repair_budget_exhausted", last_output=state.last_malformed)
                break
            await self.step()
        return result_of(state)

    async def step(self) -> None:
        state = self.state
        step = state.step + 1
        try:  # the tools offered at this step: asked of the toolsets every time
            specs = await self.tools.offer(step)
        except TetherError as e:  # a toolset that cannot list its tools, or a clash
            await self.fail(e, "toolset_failed")
            return
        messages = tuple(state.messages)
        if self.memory is not None:  # the prompt is built under the budget instead
            built = await self.memory.build(step, specs)
            if built is None:  # the run failed: the head alone is over the budget
                return
            messages = built.messages
        # Built from already-validated parts: skip re-validating every message each step.
        request = ModelRequest.model_construct(
            messages=messages, tools=specs, settings=self.agent.settings, step=step
        )
        self._model_task = asyncio.current_task()
        try:
            # Retries, fallbacks, compaction; a failed call commits the run's failure.
            answer = await call_model(self, request)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self.interrupted.done() and task is not None and task.uncancel() == 0:
                return  # abandoned by interrupt(): nothing of it was committed
            raise
        finally:
            self._model_task = None
        if answer is not None:
            await self.record(step, request, *answer)

    async def record(
        self, step: int, request: ModelRequest, model: Model, response: ModelResponse,
        latency: float,
    ) -> None:
        """Commit a step's response with its tool intents, then settle the calls."""
        state = self.state
        response = _unique_call_ids(response, step, state.call_ids)
        message = response.message
        estimate = self.runner.prices.estimate(response.provider, response.model,
                                               response.usage)
        intents: list[OpenCall] = []
        calls: list[Event] = []
        malformed: list[dict[str, Any]] = []
        for index, call in enumerate(message.tool_calls):
            span = f"s{step}.t{index}"
            try:
                arguments = self.check_call(call)
            except ModelBehaviorError as e:
                malformed.append({"call_id": call.id, "tool": call.name,
                                  "arguments": call.arguments, "error": e.message})
                calls.append(self.event(EventType.TOOL_ERROR, step, {
                    "call_id": call.id, "tool": call.name, "error": e.to_dict(),
                    "content": f"Error: {e.message}",
                }, span=span))
                continue
            intent = OpenCall(
                call_id=call.id, tool=call.name, arguments=arguments, index=index, step=step,
                idempotency_key=f"{state.run_id}-{step}-{index}",
            )
            intents.append(intent)
            calls.append(self.event(EventType.TOOL_INTENT, step, {
                "call_id": call.id, "tool": call.name, "arguments": arguments,
                "idempotency_key": intent.idempotency_key, "index": index,
                "idempotent": self.tools[call.name].idempotent,
            }, span=span))
        rejected = _rejected(response)
        extra: dict[str, Any] = {}
        if rejected:
            extra = {"rejected": rejected,
                     "malformed": {"reason": rejected, "output": message.content or ""}}
        elif malformed:
            extra = {"malformed": {"reason": "invalid tool calls", "calls": malformed}}
        if response.finish_reason:
            extra["finish_reason"] = response.finish_reason
        if response.response_id:
            extra["response_id"] = response.response_id
        if not estimate.known:
            extra["cost_known"] = False
        sent: dict[str, Any] = {}
        offered = [spec.name for spec in request.tools]
        if offered != state.offered:  # the tools offered, when they change
            sent["tools"] = offered
        if response.constraint:  # why the model could only answer as it did
            sent["constraint"] = response.constraint
        events = [
            *self.request_events(request, model, sent),
            self.event(EventType.MODEL_RESPONSE, step, {
                "message": _dump(message),
                "usage": response.usage.model_dump(exclude_defaults=True),
                "cost_usd": estimate.usd,
                "provider": response.provider,
                "model": response.model,
                **extra,
            }, span=f"s{step}.m", duration_ms=latency),
            *calls,
        ]
        if not message.tool_calls and not rejected:
            events.append(self.event(EventType.RUN_COMPLETED, step, {
                "output": message.content or "",
            }))
        elif rejected == "truncated":  # the repair path: the model sees why, and retries
            limit = self.agent.settings.max_tokens or getattr(model, "max_tokens", None)
            note = truncation_note(response.usage.output_tokens,
                                   limit if isinstance(limit, int) else None)
            events.append(self.event(EventType.DECISION, step, {
                "decision": "repair", "options": ["ask_shorter", "retry_same_prompt"],
                "chosen": "ask_shorter", "reason": "the answer stopped at the token limit",
                "message": {"role": "user", "content": note},
            }))
        await self.commit(events)
        if intents:
            await self.settle(intents, in_doubt=False)

    def request_events(
        self, request: ModelRequest, model: Model, extra: dict[str, Any] | None = None,
    ) -> list[Event]:
        """A step's ``model.request`` (with ``extra`` fields); for an agent with memory,
        after the step's ``memory.recall`` and ``context.built``."""
        step = request.step
        if self.memory is None:
            payload = request_payload(self.state, request, model)
            return [self.event(EventType.MODEL_REQUEST, step, {**payload, **(extra or {})},
                               span=f"s{step}.m")]
        payload = self.memory.request_payload(request.messages, model.provider,
                                              model.model_name)
        payload.update(extra or {})
        return [*self.memory.pending,
                self.event(EventType.MODEL_REQUEST, step, payload, span=f"s{step}.m")]

    def check_call(self, call: ToolCall) -> dict[str, Any]:
        """The call's arguments as a JSON object, or why the model must try again."""
        tool = self.tools.get(call.name)
        if tool is None:
            known = ", ".join(sorted(self.tools)) or "none"
            raise ModelBehaviorError(
                f"there is no tool named {call.name!r}; available tools: {known}",
                output=call.arguments,
            )
        tool.validate(call.arguments)
        return cast(dict[str, Any], json.loads(call.arguments or "{}"))

    # -- tools ----------------------------------------------------------------------

    async def settle(self, calls: list[OpenCall], *, in_doubt: bool) -> bool:
        """Run (or decide) each call concurrently; each commits its own outcome.

        Returns True if the run stopped because a call is in doubt.
        """
        if len(calls) == 1:
            outcomes = [await self.settle_one(calls[0], in_doubt)]
        else:
            # A task group: if one call fails unexpectedly, the others are cancelled
            # rather than left running and committing after the run has stopped.
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self.settle_one(c, in_doubt)) for c in calls]
            outcomes = [t.result() for t in tasks]
        doubtful = [c for c in outcomes if c is not None]
        if not doubtful:
            return False
        await self.commit([attention(self, doubtful)])
        return True

    async def settle_one(self, call: OpenCall, in_doubt: bool
                         ) -> tuple[OpenCall, InDoubt] | None:
        """Settle one call; a call that stays open is returned with the reason."""
        tool = self.tools.get(call.runs)
        if tool is None:
            await self.commit([self.event(EventType.TOOL_ERROR, call.step, {
                "call_id": call.call_id, "tool": call.tool,
                "error": {"type": "ToolDefinitionError",
                          "message": f"the agent no longer has a tool named {call.runs!r}"},
                "content": f"Error: tool {call.runs!r} is not available",
            }, span=tool_span(call))])
            return None
        held = self.tools.held.get(call.call_id)
        if held == "result":  # deferred: its result comes from outside, it never reruns
            return call, InDoubt("it waits for its result from outside the run",
                                 running=False, awaiting="result")
        if in_doubt and not tool.idempotent and held is None:
            if still_running(self.state.run_id, call.call_id):
                # Given up on by an earlier drive in this process, its thread still runs:
                # neither its hook nor a second run can tell or do better yet.
                return call, InDoubt("its earlier attempt is still running in this "
                                     "process", running=True)
            if not tool.reconcilable:
                return call, InDoubt("not idempotent, and no reconcile hook", running=False)
            doubt = await reconcile(self, tool, call, after="the process stopped during "
                                    "the call", run_again=True)
        else:
            doubt = await run_tool(self, call)
        return None if doubt is None else (call, doubt)


def _first(group: BaseExceptionGroup[Any]) -> BaseException:
    """The first leaf exception of a (possibly nested) group."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _rejected(response: ModelResponse) -> str | None:
    """Why a response cannot be used as it is: empty, or cut off by the token limit."""
    message = response.message
    if message.tool_calls:
        return None
    if response.finish_reason in ("length", "max_tokens"):
        return "truncated"
    if not (message.content or "").strip():
        return "empty"
    return None


def _unique_call_ids(response: ModelResponse, step: int, seen: set[str]) -> ModelResponse:
    """Give every call an id unique in the run (small models and some servers omit ids or
    number them from zero each turn); the model sees the ids it is given."""
    calls = response.message.tool_calls
    ids = [c.id for c in calls]
    if all(ids) and len(set(ids)) == len(ids) and seen.isdisjoint(ids):
        return response
    taken = set(seen)
    fresh: list[str] = []
    for i in range(len(calls)):
        candidate, n = f"call_{step}_{i}", 0
        while candidate in taken:  # a provider may already have used this very id
            n += 1
            candidate = f"call_{step}_{i}_{n}"
        taken.add(candidate)
        fresh.append(candidate)
    fixed = tuple(c.model_copy(update={"id": new}) for c, new in zip(calls, fresh, strict=True))
    message = response.message.model_copy(update={"tool_calls": fixed})
    return response.model_copy(update={"message": message})
