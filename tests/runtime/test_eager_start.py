"""Toolset calls start eagerly: no task for a call that does not wait, and a call that
waits goes on in a task exactly as it would have (values, exceptions, cancellation,
context variables)."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from tether.runtime._toolsets import start

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="outer")


async def test_a_call_that_does_not_wait_is_done_at_once() -> None:
    async def quick() -> int:
        VAR.set("inner")
        return 7

    future = start(quick())
    assert future.done() and not isinstance(future, asyncio.Task) and future.result() == 7
    assert VAR.get() == "outer"  # its context is its own, as a task's

    async def broken() -> int:
        raise ValueError("bad input")

    failed = start(broken())
    assert failed.done() and isinstance(failed.exception(), ValueError)

    async def odd() -> int:
        raise asyncio.CancelledError

    assert start(odd()).cancelled()


async def test_a_call_that_waits_goes_on_in_a_task() -> None:
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    trail: list[str] = []

    async def slow() -> str:
        VAR.set("inner")
        trail.append("before")
        got = await gate
        await asyncio.sleep(0)  # a bare yield too
        trail.append(f"after {got} {VAR.get()}")
        return got.upper()

    future = start(slow())
    assert isinstance(future, asyncio.Task) and trail == ["before"] and not future.done()
    gate.set_result("open")
    assert await future == "OPEN"
    assert trail == ["before", "after open inner"] and VAR.get() == "outer"

    gate2: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def fails_later() -> str:
        await gate2
        raise KeyError("late")

    later = start(fails_later())
    gate2.set_result("x")
    with pytest.raises(KeyError, match="late"):
        await later


async def test_cancelling_a_waiting_call_reaches_its_code() -> None:
    cleaned: list[str] = []
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def stuck() -> None:
        try:
            await never
        except asyncio.CancelledError:
            cleaned.append("cancelled")
            raise
        finally:
            cleaned.append("finally")

    future = start(stuck())
    await asyncio.sleep(0)
    future.cancel()
    await asyncio.wait([future])
    assert future.cancelled() and never.cancelled()
    assert cleaned == ["cancelled", "finally"]

    async def refuses() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "stopped cleanly"
        return "slept"

    stubborn = start(refuses())
    await asyncio.sleep(0)
    stubborn.cancel()
    await asyncio.wait([stubborn])
    assert stubborn.result() == "stopped cleanly"
