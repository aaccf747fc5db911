"""Calling a tool's code: started eagerly, its result as ``tool.result`` fields.

A leaf of the runtime (the call path and the toolsets both use it; it imports no
runtime module).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine, Generator
from typing import Any, Literal, TypeVar, cast

from ..core import ToolResult

T = TypeVar("T")

#: Why a call waits for a human: its approval, or its result from outside.
Awaiting = Literal["approval", "result"]


def result_payload(result: ToolResult) -> dict[str, Any]:
    """A result's fields of ``tool.result``: ``content`` (what the model sees); for a
    structured value, ``structured: true`` when ``content`` is its JSON text (stored
    once: ``json.loads(content)`` is the value), else ``value`` beside the text; and
    ``artifacts`` where there are any."""
    payload: dict[str, Any] = {"content": result.text()}
    if result.value is not None and not isinstance(result.value, str):
        if result.content is None and not result.artifacts:
            payload["structured"] = True
        else:
            payload["value"] = result.value
    if result.artifacts:
        payload["artifacts"] = [a.model_dump(exclude_defaults=True) for a in result.artifacts]
    return payload


def start(coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
    """Start ``coro`` at once, as Python 3.12's eager tasks do: a call that finishes
    without waiting (an inline tool) costs no task and no turn of the event loop; one
    that waits goes on in a task, exactly where it stopped. Its first part runs in a
    copy of the current context, as a task's would.

    Returns a future that is done when the call's code has stopped.
    """
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    try:
        first = context.run(coro.send, None)
    except StopIteration as done:
        future: asyncio.Future[T] = loop.create_future()
        future.set_result(cast(T, done.value))
        return future
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt | SystemExit):
            raise
        future = loop.create_future()
        if isinstance(e, asyncio.CancelledError):
            future.cancel()  # the call raised it; nobody cancelled it
        else:
            future.set_exception(e)
        return future
    return loop.create_task(_finish(coro, first), context=context)


async def _finish(coro: Coroutine[Any, Any, T], first: Any) -> T:
    return cast(T, await _Continued(coro, first))


class _Continued:
    """Awaitable that hands the task what ``coro`` is suspended on, then goes on with
    ``coro`` (values and exceptions thrown in, as ``yield from`` would)."""

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        pending = self.first
        while True:
            try:
                sent = yield pending
            except BaseException as e:  # thrown in by the task: cancellation
                try:
                    pending = self.coro.throw(e)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    pending = self.coro.send(sent)
                except StopIteration as done:
                    return done.value
