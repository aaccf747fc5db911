from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from tether.core import ModelBehaviorError, ToolDefinitionError
from tether.tools import NOT_APPLIED, ToolContext, tool


class Point(BaseModel):
    x: int
    y: int


def ctx() -> ToolContext:
    return ToolContext(run_id="r", step=1, call_id="c", tool="t", idempotency_key="r-1-0")


def test_schema_from_hints_and_docstring() -> None:
    @tool(idempotent=True)
    def move(point: Point, distance: float = 1.0, *, context: ToolContext) -> str:
        """Move a point.

        Longer explanation.

        Args:
            point: Where to start.
            distance: How far to go.
        """
        return "moved"

    spec = move.spec
    assert spec.name == "move"
    assert spec.description == "Move a point.\n\nLonger explanation."
    params = spec.parameters
    assert params["required"] == ["point"]
    assert params["properties"]["distance"] == {
        "default": 1.0, "description": "How far to go.", "type": "number"}
    assert "context" not in params["properties"]
    assert move.idempotent and move.context_param == "context"


def test_validation_errors_are_precise() -> None:
    @tool
    def f(point: Point, n: int) -> str:
        """F."""
        return "ok"

    assert f.validate('{"point": {"x": 1, "y": 2}, "n": 3}')["point"] == Point(x=1, y=2)
    with pytest.raises(ModelBehaviorError, match=r"point\.y: Field required"):
        f.validate('{"point": {"x": 1}, "n": 3}')
    with pytest.raises(ModelBehaviorError, match="extra: Extra inputs are not permitted"):
        f.validate('{"point": {"x": 1, "y": 2}, "n": 3, "extra": 1}')
    with pytest.raises(ModelBehaviorError, match="must be a JSON object"):
        f.validate("[1, 2]")
    with pytest.raises(ModelBehaviorError, match="not valid JSON"):
        f.validate("{")


def test_sync_and_async_tools_and_results() -> None:
    @tool
    def sync_tool(n: int) -> dict[str, int]:
        """S."""
        return {"n": n}

    @tool
    async def async_tool(n: int, c: ToolContext) -> Point:
        """A."""
        return Point(x=n, y=len(c.idempotency_key))

    assert asyncio.run(sync_tool.invoke({"n": 2}, ctx())) == '{"n":2}'
    assert asyncio.run(async_tool.invoke({"n": 2}, ctx())) == '{"x":2,"y":5}'
    assert sync_tool(5) == {"n": 5}  # still callable directly


def test_reconcile_hook() -> None:
    @tool
    def pay(amount: int) -> str:
        """Pay."""
        return "paid"

    assert pay.reconcile is None

    @pay.reconciler
    async def check(key: str) -> object:
        return "paid earlier" if key == "known" else NOT_APPLIED

    assert asyncio.run(pay.run_reconcile("known")) == "paid earlier"
    assert asyncio.run(pay.run_reconcile("other")) is NOT_APPLIED


def test_bad_definitions_are_refused() -> None:
    with pytest.raises(ToolDefinitionError, match="no type annotation"):
        @tool
        def untyped(x) -> str:  # type: ignore[no-untyped-def]
            return ""

    with pytest.raises(ToolDefinitionError, match="named parameters"):
        @tool
        def star(*args: int) -> str:
            return ""


def test_sync_tools_work_in_a_forked_child() -> None:
    """A process that forks after running sync tools (a prefork server, the kill sweep)
    must not count the parent's worker threads as its own."""
    import asyncio
    import os

    from tether.tools import ToolContext, tool

    @tool
    def double(x: int) -> int:
        """Double."""
        return 2 * x

    def call(x: int) -> str:
        ctx = ToolContext(run_id="r", step=1, call_id=f"c{x}", tool="double",
                          idempotency_key="k")

        async def go() -> str:
            return (await asyncio.wait_for(double.start({"x": x}, ctx), 10)).text()

        return asyncio.run(go())

    assert [call(i) for i in range(3)] == ["0", "2", "4"]  # the parent now has idle workers
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(0 if call(21) == "42" else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
