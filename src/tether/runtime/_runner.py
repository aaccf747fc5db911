"""The Runner and its step loop: observe, decide, act, record.

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
from typing import Any, cast

from ..core import (
    BudgetExceededError,
    CallInDoubtError,
    Clock,
    Event,
    EventType,
    Message,
    ModelBehaviorError,
    ModelRetry,
    RunStatus,
    SystemClock,
    TetherError,
    ToolCall,
    ToolError,
    ToolTimeoutError,
    UsageError,
    new_id,
)
from ..models import Model, ModelRequest, ModelResponse
from ..store import Store, open_store
from ..tools import NOT_APPLIED, Tool, ToolContext, serialize_result
from ._agent import Agent
from ._result import RunResult
from ._spec import load_agent
from ._state import OpenCall, RunState, fold

#: Called with each batch of events right after it is committed.
Observer = Callable[[Sequence[Event]], None]


def _resolve_model(agent: Agent) -> Model:
    if agent.model is None or isinstance(agent.model, str):
        from ..models import select_model

        return select_model(agent.model)
    return agent.model


def _dump(message: Message) -> dict[str, Any]:
    return message.model_dump(exclude_defaults=True)


class Runner:
    """Runs agents durably against a store.

    Args:
        store: Where runs are journaled; default :func:`~tether.store.open_store`.
        clock: Wall and monotonic time (injected so tests and replay are exact).
        observers: Called with every committed batch of events (live logs, exporters).
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        clock: Clock | None = None,
        observers: Sequence[Observer] = (),
    ) -> None:
        self.store = store if store is not None else open_store()
        self.clock = clock or SystemClock()
        self.observers = list(observers)

    async def run(
        self, agent: Agent, task: str, *, agent_spec: str | None = None,
        run_id: str | None = None,
    ) -> RunResult:
        """Start a run of ``agent`` on ``task`` and drive it to an end.

        Args:
            agent_spec: ``module:attribute`` of the agent, recorded so that
                ``tether resume`` in another process can load it.
        """
        execution = _Execution(self, agent, RunState(run_id=run_id or new_id("run_")))
        model = execution.model
        await execution.commit([execution.event(EventType.RUN_STARTED, 0, {
            "agent": agent.name,
            "agent_spec": agent_spec,
            "task": task,
            "instructions": agent.instructions,
            "provider": model.provider,
            "model": model.model_name,
            "tools": [t.spec.model_dump() for t in execution.tools.values()],
        })])
        return await execution.drive(in_doubt=False)

    async def resume(self, run_id: str, agent: Agent | None = None) -> RunResult:
        """Continue a run from its journal, in this process.

        ``agent`` defaults to the one recorded by ``agent_spec`` when the run started.
        A completed or quarantined run is returned as it is.
        """
        state = fold(run_id, await self.store.read(run_id))
        if state.status.is_final:
            return _result(state)
        if agent is None:
            if not state.agent_spec:
                raise UsageError(
                    f"run {run_id} did not record where its agent is defined",
                    hint="pass the agent: Runner.resume(run_id, agent)",
                )
            agent = load_agent(state.agent_spec)
        execution = _Execution(self, agent, state)
        if state.recoveries >= agent.max_recoveries:
            await execution.commit([execution.event(EventType.RUN_QUARANTINED, state.step, {
                "error": {
                    "type": "Quarantined",
                    "message": f"the run was resumed {state.recoveries} times without "
                               "making progress",
                    "hint": "inspect it with `tether show`; it crashes the process on recovery",
                },
                "recoveries": state.recoveries,
            })])
            return _result(execution.state)
        await execution.commit([execution.event(EventType.RUN_RESUMED, state.step, {
            "attempt": state.recoveries + 1,
            "from_status": str(state.status),
        })])
        return await execution.drive(in_doubt=True)

    async def resolve(self, run_id: str, call_id: str, *, result: str) -> None:
        """Settle a call in doubt by hand: record ``result`` as its outcome.

        Use it when a run is ``needs_attention``: check in the outside world whether
        the call took effect, then record what it returned (or a note that it did not
        happen), and :meth:`resume` the run.
        """
        state = fold(run_id, await self.store.read(run_id))
        call = state.open_calls.get(call_id)
        if call is None:
            raise UsageError(
                f"run {run_id} has no call in doubt with id {call_id!r}",
                hint=f"see the open calls with `tether show {run_id}`",
            )
        execution = _Execution.__new__(_Execution)
        execution.runner, execution.state = self, state
        execution.lock = asyncio.Lock()
        await execution.commit([execution.event(EventType.TOOL_RESULT, call.step, {
            "call_id": call.call_id, "tool": call.tool, "content": result,
            "resolved_by": "user",
        }, span=_tool_span(call))])

    def run_sync(self, agent: Agent, task: str, **kwargs: Any) -> RunResult:
        """:meth:`run`, for code without an event loop."""
        return asyncio.run(self.run(agent, task, **kwargs))

    def resume_sync(self, run_id: str, agent: Agent | None = None) -> RunResult:
        """:meth:`resume`, for code without an event loop."""
        return asyncio.run(self.resume(run_id, agent))


def _result(state: RunState) -> RunResult:
    return RunResult(
        run_id=state.run_id, status=state.status, output=state.output, steps=state.step,
        usage=state.usage, cost_usd=state.cost_usd, error=state.error,
    )


def _tool_span(call: OpenCall) -> str:
    return f"s{call.step}.t{call.index}"


class _Execution:
    """One process's drive of one run."""

    def __init__(self, runner: Runner, agent: Agent, state: RunState) -> None:
        self.runner = runner
        self.agent = agent
        self.state = state
        self.tools: dict[str, Tool] = agent.tool_map()
        self.specs = tuple(t.spec for t in self.tools.values())
        self.model = _resolve_model(agent)
        self.lock = asyncio.Lock()

    # -- journal --------------------------------------------------------------------

    def event(
        self, kind: EventType, step: int, payload: dict[str, Any], *,
        span: str | None = None, duration_ms: float | None = None,
    ) -> Event:
        """An event to commit; ``seq`` is assigned by :meth:`commit`."""
        parent = None if span is None else (f"s{step}" if "." in span else "run")
        return Event(run_id=self.state.run_id, seq=0, type=kind, step=step,
                     ts=self.runner.clock.now(), payload=payload, span_id=span,
                     parent_span_id=parent, duration_ms=duration_ms)

    async def commit(self, events: list[Event]) -> None:
        """Append ``events`` in one transaction, then fold them into the state."""
        async with self.lock:
            first = self.state.seq + 1
            numbered = [
                Event(run_id=e.run_id, seq=first + i, type=e.type, step=e.step, ts=e.ts,
                      payload=e.payload, span_id=e.span_id, parent_span_id=e.parent_span_id,
                      duration_ms=e.duration_ms)
                for i, e in enumerate(events)
            ]
            await self.runner.store.append(numbered)
            for e in numbered:
                self.state.apply(e)
        for observer in self.runner.observers:
            observer(numbered)

    async def fail(self, error: TetherError, reason: str) -> None:
        error.run_id, error.step = self.state.run_id, self.state.step
        await self.commit([self.event(EventType.RUN_FAILED, self.state.step, {
            "reason": reason, "error": error.to_dict(),
        })])

    # -- the loop -------------------------------------------------------------------

    async def drive(self, *, in_doubt: bool) -> RunResult:
        state = self.state
        while True:
            if state.open_calls:
                stopped = await self.settle(list(state.open_calls.values()), in_doubt=in_doubt)
                if stopped:
                    break
            in_doubt = False
            if state.status != RunStatus.RUNNING:
                break
            budget = self.agent.budget
            if budget.max_steps is not None and state.step >= budget.max_steps:
                await self.fail(BudgetExceededError(
                    f"the run reached its limit of {budget.max_steps} steps",
                    hint="resume it with a raised budget",
                    limit="max_steps", used=state.step, allowed=budget.max_steps,
                ), "budget_exceeded")
                break
            await self.step()
        return _result(state)

    async def step(self) -> None:
        state = self.state
        step = state.step + 1
        messages = tuple(state.messages)
        # Built from already-validated parts: skip re-validating every message each step.
        request = ModelRequest.model_construct(
            messages=messages, tools=self.specs, settings=self.agent.settings, step=step
        )
        clock = self.runner.clock
        started = clock.monotonic()
        try:
            response = await self.model.complete(request)
        except TetherError as e:
            await self.fail(e, "model_error")
            return
        latency = (clock.monotonic() - started) * 1000
        response = _unique_call_ids(response, step)
        message = response.message
        events = [
            self.event(EventType.MODEL_REQUEST, step, {
                "provider": self.model.provider,
                "model": self.model.model_name,
                "prefix": state.sent,
                # Messages that earlier events hold are referenced, not copied.
                "new": [{"event": origin} if origin else _dump(m) for m, origin in
                        zip(messages[state.sent:], state.origins[state.sent:], strict=True)],
            }, span=f"s{step}.m"),
            self.event(EventType.MODEL_RESPONSE, step, {
                "message": _dump(message),
                "usage": response.usage.model_dump(exclude_defaults=True),
                "provider": response.provider,
                "model": response.model,
                **{k: v for k, v in (("finish_reason", response.finish_reason),
                                     ("response_id", response.response_id)) if v},
            }, span=f"s{step}.m", duration_ms=latency),
        ]
        intents: list[OpenCall] = []
        for index, call in enumerate(message.tool_calls):
            span = f"s{step}.t{index}"
            try:
                arguments = self.check_call(call)
            except ModelBehaviorError as e:
                events.append(self.event(EventType.TOOL_ERROR, step, {
                    "call_id": call.id, "tool": call.name, "error": e.to_dict(),
                    "content": f"Error: {e.message}",
                }, span=span))
                continue
            intent = OpenCall(
                call_id=call.id, tool=call.name, arguments=arguments, index=index, step=step,
                idempotency_key=f"{state.run_id}-{step}-{index}",
            )
            intents.append(intent)
            events.append(self.event(EventType.TOOL_INTENT, step, {
                "call_id": call.id, "tool": call.name, "arguments": arguments,
                "idempotency_key": intent.idempotency_key, "index": index,
                "idempotent": self.tools[call.name].idempotent,
            }, span=span))
        if not message.tool_calls:
            events.append(self.event(EventType.RUN_COMPLETED, step, {
                "output": message.content or "",
            }))
        await self.commit(events)
        if intents:
            await self.settle(intents, in_doubt=False)

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
            outcomes = await asyncio.gather(*(self.settle_one(c, in_doubt) for c in calls))
        doubtful = [c for c in outcomes if c is not None]
        if not doubtful:
            return False
        names = ", ".join(f"{c.tool} (call {c.call_id})" for c in doubtful)
        error = CallInDoubtError(
            f"cannot tell whether {names} took effect before the process stopped; "
            "the tool is not idempotent and has no reconcile hook",
            hint="check the outside world, then `tether resolve RUN_ID CALL_ID --result ...` "
                 "and `tether resume RUN_ID`",
            run_id=self.state.run_id, step=self.state.step,
        )
        await self.commit([self.event(EventType.RUN_NEEDS_ATTENTION, self.state.step, {
            "error": error.to_dict(),
            "calls": [{"call_id": c.call_id, "tool": c.tool, "arguments": c.arguments,
                       "idempotency_key": c.idempotency_key} for c in doubtful],
        })])
        return True

    async def settle_one(self, call: OpenCall, in_doubt: bool) -> OpenCall | None:
        tool = self.tools.get(call.tool)
        span = _tool_span(call)
        if tool is None:
            await self.commit([self.event(EventType.TOOL_ERROR, call.step, {
                "call_id": call.call_id, "tool": call.tool,
                "error": {"type": "ToolDefinitionError",
                          "message": f"the agent no longer has a tool named {call.tool!r}"},
                "content": f"Error: tool {call.tool!r} is not available",
            }, span=span)])
            return None
        if in_doubt and not tool.idempotent:
            if tool.reconcile is None:
                return call
            outcome = await tool.run_reconcile(call.idempotency_key)
            applied = outcome is not NOT_APPLIED
            decision = self.event(EventType.DECISION, call.step, {
                "decision": "reconcile", "call_id": call.call_id, "tool": call.tool,
                "options": ["record_result", "run_again"],
                "chosen": "record_result" if applied else "run_again",
                "reason": "reconcile() found the call took effect" if applied
                          else "reconcile() found the call did not take effect",
            }, span=span)
            if applied:
                await self.commit([decision, self.event(EventType.TOOL_RESULT, call.step, {
                    "call_id": call.call_id, "tool": call.tool,
                    "content": serialize_result(outcome), "reconciled": True,
                }, span=span)])
                return None
            await self.commit([decision])
        await self.commit([await self.invoke(tool, call)])
        return None

    async def invoke(self, tool: Tool, call: OpenCall) -> Event:
        """Run one call and return its outcome event (not yet committed)."""
        context = ToolContext(
            run_id=self.state.run_id, step=call.step, call_id=call.call_id, tool=call.tool,
            idempotency_key=call.idempotency_key,
        )
        span = _tool_span(call)
        clock = self.runner.clock
        started = clock.monotonic()
        base = {"call_id": call.call_id, "tool": call.tool}
        try:
            arguments = tool.validate_object(call.arguments)
            if tool.timeout_s is None:
                content = await tool.invoke(arguments, context)
            else:
                content = await asyncio.wait_for(tool.invoke(arguments, context), tool.timeout_s)
        except ModelRetry as e:
            error: dict[str, Any] = {"type": "ModelRetry", "message": e.message}
            text = e.message
        except TimeoutError:
            context.cancel_event.set()
            timeout = ToolTimeoutError(
                f"tool {call.tool!r} did not finish within {tool.timeout_s} s",
                tool=call.tool, call_id=call.call_id,
            )
            error, text = timeout.to_dict(), f"Error: {timeout.message}"
        except ToolError as e:
            error, text = e.to_dict(), f"Error: {e.message}"
        except Exception as e:  # a tool's own failure is reported to the model
            error = {"type": type(e).__name__, "message": str(e)}
            text = f"Error: {call.tool} raised {type(e).__name__}: {e}"
        else:
            return self.event(EventType.TOOL_RESULT, call.step, {**base, "content": content},
                              span=span, duration_ms=(clock.monotonic() - started) * 1000)
        return self.event(EventType.TOOL_ERROR, call.step, {**base, "error": error,
                          "content": text}, span=span,
                          duration_ms=(clock.monotonic() - started) * 1000)


def _unique_call_ids(response: ModelResponse, step: int) -> ModelResponse:
    """Give every call of a response a distinct id (small models repeat or omit them)."""
    calls = response.message.tool_calls
    ids = [c.id for c in calls]
    if all(ids) and len(set(ids)) == len(ids):
        return response
    fixed = tuple(c.model_copy(update={"id": f"call_{step}_{i}"}) for i, c in enumerate(calls))
    message = response.message.model_copy(update={"tool_calls": fixed})
    return response.model_copy(update={"message": message})
