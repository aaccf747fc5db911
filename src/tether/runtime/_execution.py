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
from collections.abc import Sequence
from typing import Any, cast

from ..core import (
    BudgetExceededError,
    Event,
    EventType,
    Message,
    ModelBehaviorError,
    RunStatus,
    TetherError,
    ToolCall,
    visible,
)
from ..models import Model, ModelRequest, ModelResponse
from ..store import Lease
from ..tools import FunctionToolset, still_running
from ._agent import Agent
from ._budget import Budget
from ._call import CallContext, Host, failure_event, request_payload
from ._journal import Journal, Within
from ._memory import RunMemory
from ._model_call import call_model
from ._policy import truncation_note
from ._result import RunResult
from ._state import OpenCall, RunState
from ._stream import complete
from ._tool_call import InDoubt, reconcile, run_tool, tool_span
from ._toolsets import RunTools, attention


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


class Execution:
    """Drives one run in this process; all it knows is folded from the journal it
    holds. Its calls (model, tools, compaction) get a :class:`CallContext`, not it."""

    def __init__(self, runner: Host, agent: Agent, state: RunState) -> None:
        self.runner = runner
        self.journal = Journal(runner, state)
        #: The run's state, folded from its journal (the journal's, updated in place).
        self.state: RunState = state
        self.agent = agent
        self._context: CallContext | None = None
        self._overrides: dict[str, Any] = {}
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

    # -- the journal it holds ----------------------------------------------------------

    @property
    def lease(self) -> Lease | None:
        """The run's lease, once the first commit took it."""
        return self.journal.lease

    def event(
        self, kind: EventType, step: int, payload: dict[str, Any], *,
        span: str | None = None, duration_ms: float | None = None,
    ) -> Event:
        """An event of this run (see :meth:`Journal.event`)."""
        return self.journal.event(kind, step, payload, span=span, duration_ms=duration_ms)

    async def commit(self, events: list[Event], *, within: Within | None = None) -> None:
        """Commit ``events`` in one transaction (see :meth:`Journal.commit`)."""
        await self.journal.commit(events, within=within)

    def context(self) -> CallContext:
        """What this run's calls get to work with: built once, and again only when a
        ``budget`` event raised the budget (the hot path builds nothing per step)."""
        context, overrides = self._context, self.state.budget_overrides
        if context is None or overrides != self._overrides:
            runner = self.runner
            context = self._context = CallContext(
                journal=self.journal, policy=self.agent.policy, budget=self.budget,
                clock=runner.clock, rng=runner.rng, ids=runner.ids,
                breakers=runner.breakers, interrupted=self.interrupted,
                request_events=self.request_events, handle=self, attempt=self._attempt,
                working_view=None if self.memory is None else self.memory.working_view,
                take_working=None if self.memory is None else self.memory.take_working,
            )
            self._overrides = dict(overrides)
        return context

    async def _attempt(self, model: Model, request: ModelRequest) -> ModelResponse:
        """One model attempt; live subscribers of this run's tokens get them as they come."""
        return await complete(self, model, request)

    def interrupt(self) -> None:
        """Stop taking new work: a model call in flight is abandoned (it has no effect),
        tool calls in flight are asked to stop, every outcome that finished is
        committed, and the run is paused (``run.paused``) for ``tether resume``."""
        if not self.interrupted.done():
            self.interrupted.set_result(None)
        if self._model_task is not None:
            self._model_task.cancel()

    async def fail(
        self, error: TetherError, reason: str, *, step: int | None = None,
        events: Sequence[Event] = (), **extra: Any,
    ) -> None:
        """Commit ``run.failed`` (after ``events``, in the same transaction) at ``step``:
        the step whose model call failed, else the last completed one."""
        step = self.state.step if step is None else step
        await self.commit([*events, failure_event(self.journal, error, reason, step, **extra)])

    # -- budgets and deadlines --------------------------------------------------------

    @property
    def budget(self) -> Budget:
        """The agent's budget, raised by the run's ``budget`` events."""
        overrides = self.state.budget_overrides
        return self.agent.budget.raised(overrides) if overrides else self.agent.budget

    def remaining_s(self) -> float | None:
        """Seconds left before the run's deadline, if it has one."""
        return self.context().remaining_s()

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
            shrink = None if self.memory is None else self.memory.shrink
            answer = await call_model(self.context(), self.models, request, shrink=shrink)
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
        held = self.tools.held.get(call.call_id)
        if held == "result":  # deferred: its result comes from outside, it never reruns
            return call, InDoubt("it waits for its result from outside the run",
                                 running=False, awaiting="result")
        tool = self.tools.get(call.runs)
        if tool is None and in_doubt:
            # Cut short by a crash, it may have taken effect: telling the model it
            # failed would invite it to do the same thing again another way.
            return call, InDoubt(f"the agent no longer offers {call.runs!r}, and the "
                                 "call may have taken effect before the process "
                                 "stopped", running=False)
        if tool is None:
            await self.commit([self.event(EventType.TOOL_ERROR, call.step, {
                "call_id": call.call_id, "tool": call.tool,
                "error": {"type": "ToolDefinitionError",
                          "message": f"the agent no longer has a tool named {call.runs!r}"},
                "content": f"Error: tool {call.runs!r} is not available",
            }, span=tool_span(call))])
            return None
        if in_doubt and not tool.idempotent and held is None:
            if still_running(self.state.run_id, call.call_id):
                # Given up on by an earlier drive in this process, its thread still runs:
                # neither its hook nor a second run can tell or do better yet.
                return call, InDoubt("its earlier attempt is still running in this "
                                     "process", running=True)
            if not tool.reconcilable:
                return call, InDoubt("not idempotent, and no reconcile hook", running=False)
            doubt = await reconcile(self.context(), self.tools, tool, call,
                                    after="the process stopped during the call",
                                    run_again=True)
        else:
            doubt = await run_tool(self.context(), self.tools, call)
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
