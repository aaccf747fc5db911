"""Calling a tool: timeouts, retries of idempotent tools, circuit breakers, fallbacks.

A tool's failure is reported to the model as the call's result (a ``tool.error``
event), never raised out of the run. Only idempotent tools are retried
automatically: a second attempt at a non-idempotent call could repeat its effect.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from ..core import Event, EventType, ModelRetry, ToolError, ToolTimeoutError, ToolUnavailableError
from ..tools import Tool, ToolContext
from ._policy import error_class
from ._state import OpenCall

if TYPE_CHECKING:
    from ._execution import Execution


def tool_span(call: OpenCall) -> str:
    return f"s{call.step}.t{call.index}"


def _error_payload(error: BaseException) -> dict[str, Any]:
    if isinstance(error, ToolError):
        return error.to_dict()
    return {"type": type(error).__name__, "message": str(error)}


async def run_tool(ex: Execution, call: OpenCall) -> None:
    """Run ``call`` (or, after a fallback, the tool it fell back to) and commit its outcome.

    Falling back is committed *before* the fallback tool runs, so a crash in between
    leaves a call in doubt under the fallback tool's own policy, not the first tool's.
    """
    tool = ex.tools[call.runs]
    events: list[Event] = []
    outcome = await _run_with_retries(ex, tool, call, events)
    error = outcome.payload.get("error") or {}
    fallback = tool.fallback if call.runs == call.tool else None
    if (outcome.type == EventType.TOOL_ERROR and fallback is not None and fallback in ex.tools
            and error.get("type") != "ModelRetry"):
        await ex.commit([*events, ex.event(EventType.FALLBACK, call.step, {
            "call_id": call.call_id, "from_tool": tool.name, "to_tool": fallback,
            "reason": error.get("type"), "error": error,
        }, span=tool_span(call))])
        events = []
        outcome = await _run_with_retries(ex, ex.tools[fallback], call, events)
    await ex.commit([*events, outcome])


async def _run_with_retries(
    ex: Execution, tool: Tool, call: OpenCall, events: list[Event]
) -> Event:
    breaker = ex.runner.breakers.get(f"tool:{tool.name}", ex.agent.policy.breaker)
    clock = ex.runner.clock
    span = tool_span(call)
    base = {"call_id": call.call_id, "tool": call.tool}
    if tool.name != call.tool:
        base["ran"] = tool.name
    while True:
        allowed, transition = breaker.before_call(clock.monotonic())
        if transition:
            events.append(ex.event(EventType.BREAKER, call.step, transition.payload(), span=span))
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
            return ex.event(EventType.TOOL_ERROR, call.step, {
                **base, "error": error.to_dict(), "content": content}, span=span)
        attempt = ex.state.tool_attempts.get(f"{call.call_id}/{tool.name}", 0) + 1
        started = clock.monotonic()
        try:
            content = await _invoke(ex, tool, call, attempt)
        except ModelRetry as e:
            # The tool worked and asks the model to change its request: not a failure.
            breaker.on_success()
            return ex.event(EventType.TOOL_ERROR, call.step, {
                **base, "error": {"type": "ModelRetry", "message": e.message},
                "content": e.message}, span=span,
                duration_ms=(clock.monotonic() - started) * 1000)
        except Exception as e:  # a tool's own failure is reported to the model
            duration = (clock.monotonic() - started) * 1000
            transition = breaker.on_failure(clock.monotonic(), type(e).__name__)
            if transition:
                events.append(ex.event(EventType.BREAKER, call.step, transition.payload(),
                                       span=span))
            retry = ex.agent.policy.tool_retry
            delay = retry.delay(attempt, e, ex.runner.rng)
            remaining = ex.remaining_s()
            if (tool.idempotent and attempt < retry.attempts_for(e) and breaker.state != "open"
                    and (remaining is None or delay < remaining)):
                await ex.commit([*events, ex.event(EventType.RETRY, call.step, {
                    "target": "tool", "call_id": call.call_id, "tool": tool.name,
                    "attempt": attempt, "error": _error_payload(e),
                    "error_class": error_class(e), "delay_s": round(delay, 4),
                }, span=span)])
                events.clear()
                await asyncio.sleep(delay)
                continue
            return ex.event(EventType.TOOL_ERROR, call.step, {
                **base, "error": _error_payload(e), "attempts": attempt,
                "content": f"Error: {tool.name} failed: {type(e).__name__}: {e}"},
                span=span, duration_ms=duration)
        except BaseException:
            breaker.release()  # cancelled: the probe (if this was one) ended undecided
            raise
        transition = breaker.on_success()
        if transition:
            events.append(ex.event(EventType.BREAKER, call.step, transition.payload(),
                                   span=span))
        return ex.event(EventType.TOOL_RESULT, call.step, {**base, "content": content},
                        span=span, duration_ms=(clock.monotonic() - started) * 1000)


async def _invoke(ex: Execution, tool: Tool, call: OpenCall, attempt: int) -> str:
    """One attempt, bounded by the tool's timeout and the run's deadline."""
    context = ToolContext(
        run_id=ex.state.run_id, step=call.step, call_id=call.call_id, tool=tool.name,
        idempotency_key=call.idempotency_key, attempt=attempt,
    )
    arguments = tool.validate_object(call.arguments)
    timeout = tool.timeout_s if tool.timeout_s is not None else ex.agent.policy.tool_timeout_s
    remaining = ex.remaining_s()
    if remaining is not None:
        timeout = remaining if timeout is None else min(timeout, remaining)
    try:
        if timeout is None:
            return await tool.invoke(arguments, context)
        async with asyncio.timeout(max(0.0, timeout)):
            return await tool.invoke(arguments, context)
    except asyncio.CancelledError:
        context.cancel_event.set()  # the run itself was cancelled: tell the tool
        raise
    except TimeoutError as e:
        context.cancel_event.set()
        raise ToolTimeoutError(
            f"tool {tool.name!r} did not finish within {timeout:g} s",
            hint="raise the tool's timeout_s if it is slow but healthy",
            tool=tool.name, call_id=call.call_id,
        ) from e
