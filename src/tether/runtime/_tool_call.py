"""Calling a tool: timeouts, retries of idempotent tools, circuit breakers, fallbacks,
and calls whose outcome is unknown.

A tool's failure is reported to the model as the call's result (a ``tool.error``
event), never raised out of the run. Only idempotent tools are retried
automatically: a second attempt at a non-idempotent call could repeat its effect.

A call the run gives up on (its timeout passed, or the run was interrupted) is asked
to stop (``ToolContext.cancel_event``) and given ``Policy.tool_stop_grace_s`` to do so.
If it ends by then, its outcome is known and recorded as usual. If it is still running
(a sync tool's thread cannot be stopped from outside) or was cancelled mid-call (an
async tool), whether it took effect is unknown: the call is *in doubt*, never a
failure. An idempotent tool is retried with the same idempotency key; a tool with a
``reconcile`` hook asks it, once the call has stopped; any other call stops the run as
``needs_attention``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from ..core import (
    ApprovalRequired,
    CallDeferred,
    Event,
    EventType,
    ModelRetry,
    ToolError,
    ToolResult,
    ToolTimeoutError,
    ToolUnavailableError,
)
from ..tools import NOT_APPLIED, ToolContext, ToolDef, as_result, still_running
from ._call import CallContext, ToolCalls, transition_events
from ._eager import Awaiting, result_payload, start
from ._policy import Retry, after_tool_failure, error_class, tool_fallback
from ._state import OpenCall


def tool_span(call: OpenCall) -> str:
    return f"s{call.step}.t{call.index}"


def _error_payload(error: BaseException) -> dict[str, Any]:
    if isinstance(error, ToolError):
        return error.to_dict()
    return {"type": type(error).__name__, "message": str(error)}


@dataclass(frozen=True, slots=True)
class InDoubt:
    """A call whose outcome is unknown; it keeps its intent and no outcome."""

    why: str
    #: Whether the call's code may still be running (a sync tool's thread).
    running: bool
    #: Not in doubt but held: it waits for a human's approval (it never ran), or for
    #: its result from outside (``CallDeferred``).
    awaiting: Awaiting | None = None


class _Unknown(Exception):
    def __init__(self, why: str, *, running: bool, interrupted: bool) -> None:
        super().__init__(why)
        self.doubt = InDoubt(why, running)
        self.interrupted = interrupted


class _NotStarted(Exception):
    """The call was never started (the run's deadline had passed): a definite outcome."""


async def run_tool(ctx: CallContext, tools: ToolCalls, call: OpenCall) -> InDoubt | None:
    """Run ``call`` (or, after a fallback, the tool it fell back to) and commit its outcome.

    Falling back is committed *before* the fallback tool runs, so a crash in between
    leaves a call in doubt under the fallback tool's own policy, not the first tool's.

    Returns why the call is in doubt, or None once its outcome is committed (or the run
    was interrupted and the call left open for the resume).
    """
    journal = ctx.journal
    tool = tools[call.runs]
    events: list[Event] = []
    outcome = await _run_with_retries(ctx, tools, tool, call, events)
    if isinstance(outcome, Event) and outcome.type == EventType.TOOL_ERROR:
        error = outcome.payload.get("error") or {}
        fallback = tool_fallback(error.get("type"), fallback=tool.fallback, available=tools,
                                 already_fallen_back=call.runs != call.tool)
        if fallback is not None:
            await journal.commit([*events, journal.event(EventType.FALLBACK, call.step, {
                "call_id": call.call_id, "from_tool": tool.name, "to_tool": fallback,
                "reason": error.get("type"), "error": error,
            }, span=tool_span(call))])
            events = []
            tool = tools[fallback]
            outcome = await _run_with_retries(ctx, tools, tool, call, events)
    if isinstance(outcome, Event):
        # the call's working-memory entries commit with its outcome
        working = [] if ctx.take_working is None else ctx.take_working(call, tool.name)
        await journal.commit([*events, *working, outcome])
        return None
    if events:
        await journal.commit(events)
    if outcome is None or outcome.running or outcome.awaiting or not tool.reconcilable:
        return outcome
    # Stopped, outcome unknown: the hook can tell. If it did not take effect, that is a
    # definite failure the model is told about (running it again is the model's choice).
    return await reconcile(ctx, tools, tool, call, after=outcome.why, run_again=False)


async def reconcile(
    ctx: CallContext, tools: ToolCalls, tool: ToolDef, call: OpenCall, *, after: str,
    run_again: bool,
) -> InDoubt | None:
    """Ask ``tool``'s reconcile hook whether ``call`` took effect and commit the answer.

    Applied: its result is recorded. Not applied: the call runs again (``run_again``,
    after a crash) or is recorded as failed. A hook that raises leaves the call in doubt.
    """
    span, journal = tool_span(call), ctx.journal
    try:
        outcome = await tools.reconcile(tool.name, call.idempotency_key)
    except Exception as e:
        return InDoubt(f"its reconcile hook raised {e!r}", running=False)
    applied = outcome is not NOT_APPLIED
    otherwise = "run_again" if run_again else "record_failure"
    decision = journal.event(EventType.DECISION, call.step, {
        "decision": "reconcile", "call_id": call.call_id, "tool": call.runs,
        "options": ["record_result", otherwise],
        "chosen": "record_result" if applied else otherwise,
        "reason": f"{after}; reconcile() found the call "
                  + ("took effect" if applied else "did not take effect"),
    }, span=span)
    if applied:
        await journal.commit([decision, journal.event(EventType.TOOL_RESULT, call.step, {
            "call_id": call.call_id, "tool": call.tool,
            **result_payload(as_result(outcome)), "reconciled": True,
        }, span=span)])
        return None
    if run_again:
        await journal.commit([decision])
        return await run_tool(ctx, tools, call)
    error = ToolTimeoutError(f"tool {tool.name!r} was stopped ({after}) before it took "
                             "effect", tool=tool.name, call_id=call.call_id)
    await journal.commit([decision, journal.event(EventType.TOOL_ERROR, call.step, {
        "call_id": call.call_id, "tool": call.tool, "error": error.to_dict(),
        "content": f"Error: {error.message}", "reconciled": True,
    }, span=span)])
    return None


async def _run_with_retries(
    ctx: CallContext, tools: ToolCalls, tool: ToolDef, call: OpenCall, events: list[Event]
) -> Event | InDoubt | None:
    breaker = ctx.breakers.get(f"tool:{tool.name}", ctx.policy.breaker)
    clock, journal = ctx.clock, ctx.journal
    span = tool_span(call)
    base = {"call_id": call.call_id, "tool": call.tool}
    if tool.name != call.tool:
        base["ran"] = tool.name
    while True:
        allowed, transition = breaker.before_call(clock.monotonic())
        events += transition_events(journal, transition, call.step, span=span)
        if not allowed:
            wait = breaker.retry_in(clock.monotonic())
            error = ToolUnavailableError(
                f"tool {tool.name!r} is unavailable: it failed repeatedly and its circuit "
                f"breaker is open (next try in {wait:.0f} s)",
                tool=tool.name, call_id=call.call_id,
            )
            content = json.dumps({"error": "unavailable", "tool": tool.name,
                                  "retry_after_s": round(wait, 1),
                                  "message": "do without this tool for now"})
            return journal.event(EventType.TOOL_ERROR, call.step, {
                **base, "error": error.to_dict(), "content": content}, span=span)
        attempt = journal.state.tool_attempts.get(f"{call.call_id}/{tool.name}", 0) + 1
        started = clock.monotonic()
        unknown: _Unknown | None = None
        try:
            result = await _invoke(ctx, tools, tool, call, attempt)
        except _NotStarted as e:
            breaker.release()
            return journal.event(EventType.TOOL_ERROR, call.step, {
                **base, "error": _error_payload(e.__cause__ or e), "not_started": True,
                "content": f"Error: {tool.name} was not run: {e}"}, span=span)
        except (ApprovalRequired, CallDeferred) as e:
            # Held, not failed: nothing ran (approval), or it goes on outside (deferred).
            breaker.release()
            return InDoubt(e.message, running=False, awaiting=(
                "approval" if isinstance(e, ApprovalRequired) else "result"))
        except ModelRetry as e:
            # The tool worked and asks the model to change its request: not a failure.
            events += transition_events(journal, breaker.on_success(), call.step, span=span)
            return journal.event(EventType.TOOL_ERROR, call.step, {
                **base, "error": {"type": "ModelRetry", "message": e.message},
                "content": e.message}, span=span,
                duration_ms=(clock.monotonic() - started) * 1000)
        except _Unknown as e:
            if e.interrupted:
                breaker.release()  # undecided: the run stops, the call stays open
                return None
            unknown = e
            failure: Exception = ToolTimeoutError(
                f"tool {tool.name!r}: {e.doubt.why}; its outcome is unknown",
                tool=tool.name, call_id=call.call_id)
        except Exception as e:  # a tool's own failure is reported to the model
            failure = e
        except BaseException:
            breaker.release()  # cancelled: the probe (if this was one) ended undecided
            raise
        else:
            events += transition_events(journal, breaker.on_success(), call.step, span=span)
            return journal.event(EventType.TOOL_RESULT, call.step,
                                 {**base, **result_payload(result)}, span=span,
                                 duration_ms=(clock.monotonic() - started) * 1000)
        duration = (clock.monotonic() - started) * 1000
        transition = breaker.on_failure(clock.monotonic(), type(failure).__name__)
        events += transition_events(journal, transition, call.step, span=span)
        decision = after_tool_failure(
            failure, attempt=attempt, retry=ctx.policy.tool_retry, rng=ctx.rng,
            idempotent=tool.idempotent, breaker_open=breaker.state == "open",
            remaining_s=ctx.remaining_s())
        if isinstance(decision, Retry):
            # An idempotent call in doubt may run again: the same key dedupes it outside.
            await journal.commit([*events, journal.event(EventType.RETRY, call.step, {
                "target": "tool", "call_id": call.call_id, "tool": tool.name,
                "attempt": attempt, "error": _error_payload(failure),
                "error_class": error_class(failure), "delay_s": round(decision.delay_s, 4),
                **({"outcome": "unknown"} if unknown else {}),
            }, span=span)])
            events.clear()
            await clock.sleep(decision.delay_s)
            continue
        if unknown is not None:
            return unknown.doubt
        return journal.event(EventType.TOOL_ERROR, call.step, {
            **base, "error": _error_payload(failure), "attempts": attempt,
            "content": f"Error: {tool.name} failed: {type(failure).__name__}: {failure}"},
            span=span, duration_ms=duration)


async def _invoke(
    ctx: CallContext, tools: ToolCalls, tool: ToolDef, call: OpenCall, attempt: int,
) -> ToolResult:
    """One attempt, bounded by the tool's timeout and the run's deadline.

    Raises:
        _NotStarted: the run's deadline had passed; the tool was not started.
        _Unknown: the run gave up on the call and cannot tell whether it took effect.
        Exception: what the tool raised (a definite failure).
    """
    context = ToolContext(
        run_id=ctx.journal.state.run_id, step=call.step, call_id=call.call_id, tool=tool.name,
        idempotency_key=call.idempotency_key, attempt=attempt, execution=ctx.handle,
        approved=call.call_id in tools.approved,
        working=None if ctx.working_view is None else ctx.working_view(call, tool.name),
    )
    arguments = tool.validate_object(call.arguments)
    timeout = tool.timeout_s if tool.timeout_s is not None else ctx.policy.tool_timeout_s
    remaining = ctx.remaining_s()
    if remaining is not None:
        if remaining <= 0:
            raise _NotStarted("the run's deadline had passed") from ctx.deadline_error()
        timeout = remaining if timeout is None else min(timeout, remaining)
    stop = ctx.interrupted
    if stop is not None and stop.done():
        raise _Unknown("the run was interrupted before it started", running=False,
                       interrupted=True)
    future = start(tools.call(tool.name, arguments, context))
    try:
        if not future.done():
            await asyncio.wait((future,) if stop is None else (future, stop), timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        if future.done():
            if future.cancelled():  # nobody cancelled it: the tool raised CancelledError
                raise ToolError(f"tool {tool.name!r} raised CancelledError (it was not "
                                "cancelled)", tool=tool.name, call_id=call.call_id)
            return future.result()
        interrupted = stop is not None and stop.done()
        why = "the run was interrupted" if interrupted else \
            f"it did not finish within {timeout:g} s"
        context.cancel_event.set()
        await asyncio.wait((future,), timeout=ctx.policy.tool_stop_grace_s)
        if not future.done() and isinstance(future, asyncio.Task):
            future.cancel()  # an async tool stops at its next await
            await asyncio.wait((future,))
    except asyncio.CancelledError:
        context.cancel_event.set()  # the run itself was cancelled: tell the tool
        if isinstance(future, asyncio.Task):
            future.cancel()
        raise
    if future.done() and not future.cancelled():
        error = future.exception()
        if error is None:
            return future.result()  # it ended while we waited: its outcome is known
        if interrupted or isinstance(error, ModelRetry | ApprovalRequired | CallDeferred):
            raise error
        raise ToolTimeoutError(
            f"tool {tool.name!r} did not finish within {timeout:g} s and stopped with "
            f"{type(error).__name__}: {error}",
            hint="raise the tool's timeout_s if it is slow but healthy",
            tool=tool.name, call_id=call.call_id,
        ) from error
    # A sync tool's thread outlives its cancelled call: it is still running.
    running = not future.done() or still_running(context.run_id, context.call_id)
    raise _Unknown(f"{why} and " + ("is still running" if running else
                                    "was cancelled mid-call"),
                   running=running, interrupted=interrupted)
