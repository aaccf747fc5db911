"""Toolsets on their own: listing, wrappers, names both ways, approval, structured results."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from tether.core import (
    ApprovalRequired,
    Artifact,
    ModelBehaviorError,
    TetherError,
    ToolDefinitionError,
    ToolResult,
)
from tether.tools import (
    NOT_APPLIED,
    ApprovalRequiredToolset,
    FilteredToolset,
    FunctionToolset,
    PrefixedToolset,
    StepContext,
    ToolContext,
    Toolset,
    as_result,
    tool,
)

STEP = StepContext(run_id="r", agent="a", step=1)


def ctx(name: str, *, approved: bool = False) -> ToolContext:
    return ToolContext(run_id="r", step=1, call_id="c1", tool=name, idempotency_key="r-1-0",
                       approved=approved)


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool(fallback="add")
async def mul(a: int, b: int) -> int:
    """Multiply two numbers."""
    await asyncio.sleep(0)
    return a * b


async def test_a_function_toolset_lists_and_calls_its_tools() -> None:
    ts = FunctionToolset([add, mul])
    assert isinstance(ts, Toolset)
    assert [d.name for d in await ts.list_tools(STEP)] == ["add", "mul"]
    assert await ts.call("mul", {"a": 6, "b": 7}, ctx("mul")) == ToolResult(value=42)
    with pytest.raises(ToolDefinitionError, match="no tool named 'div'"):
        await ts.call("div", {}, ctx("div"))
    with pytest.raises(ToolDefinitionError, match="more than one tool named add"):
        FunctionToolset([add, add])


async def test_prefixed_names_round_trip_and_fallbacks_follow() -> None:
    seen: list[tuple[str, str]] = []

    @tool
    def probe(x: str, ctx: ToolContext) -> str:
        """Echo."""
        seen.append((x, ctx.tool))
        return x

    @probe.reconciler
    def _probe_done(key: str) -> object:
        return f"done {key}" if key.endswith("0") else NOT_APPLIED

    inner = FunctionToolset([add, mul, probe])
    ts = PrefixedToolset(inner, "calc")
    defs = {d.name: d for d in await ts.list_tools(STEP)}
    assert sorted(defs) == ["calc_add", "calc_mul", "calc_probe"]
    assert defs["calc_mul"].fallback == "calc_add"  # a fallback names a sibling, renamed
    assert defs["calc_mul"].spec.name == "calc_mul"
    # Argument errors name the tool as the model saw it.
    with pytest.raises(ModelBehaviorError, match="'calc_add'"):
        defs["calc_add"].validate('{"a": "x"}')
    assert await ts.call("calc_add", {"a": 1, "b": 2}, ctx("calc_add")) == ToolResult(value=3)
    assert await ts.call("calc_probe", {"x": "hi"}, ctx("calc_probe")) == ToolResult(
        content="hi")
    assert seen == [("hi", "calc_probe")]
    assert await ts.reconcile("calc_probe", "k0") == "done k0"
    assert await ts.reconcile("calc_probe", "k1") is NOT_APPLIED
    for hostile in ("add", "calc", "calcadd", "other_add", ""):
        with pytest.raises(ToolDefinitionError):
            await ts.call(hostile, {"a": 1, "b": 2}, ctx(hostile))
    # Prefixes nest, and each layer strips its own.
    twice = PrefixedToolset(ts, "x")
    assert "x_calc_add" in [d.name for d in await twice.list_tools(STEP)]
    assert await twice.call("x_calc_add", {"a": 2, "b": 2}, ctx("x")) == ToolResult(value=4)
    for bad in ("", "a b", "a/b", "ü\n"):
        with pytest.raises(ToolDefinitionError):
            PrefixedToolset(inner, bad)


async def test_a_filter_is_decided_again_at_every_step() -> None:
    ts = FilteredToolset(FunctionToolset([add, mul]),
                         lambda step, d: d.name == "add" or step.step % 2 == 0)
    odd = [d.name for d in await ts.list_tools(STEP)]
    even = [d.name for d in await ts.list_tools(StepContext(run_id="r", agent="a", step=2))]
    assert odd == ["add"] and even == ["add", "mul"]


async def test_approval_is_asked_before_anything_runs() -> None:
    ran: list[int] = []

    @tool
    def pay(cents: int) -> str:
        """Pay."""
        ran.append(cents)
        return "paid"

    ts = ApprovalRequiredToolset(FunctionToolset([pay]),
                                 requires=lambda c, args: args["cents"] > 100)
    assert await ts.call("pay", {"cents": 5}, ctx("pay")) == ToolResult(content="paid")
    with pytest.raises(ApprovalRequired):
        await ts.call("pay", {"cents": 500}, ctx("pay"))
    assert ran == [5]
    assert await ts.call("pay", {"cents": 500}, ctx("pay", approved=True)) == ToolResult(
        content="paid")
    assert ran == [5, 500]
    assert not issubclass(ApprovalRequired, TetherError)  # a signal, not a failure


@dataclass
class Point:
    x: int
    y: int


def test_results_may_be_structured_or_refer_to_artifacts() -> None:
    assert as_result("text") == ToolResult(content="text")
    assert as_result(Point(1, 2)).value == {"x": 1, "y": 2}
    assert as_result({"a": [1, "é"]}).text() == '{"a":[1,"é"]}'
    ref = Artifact(uri="file:///tmp/report.pdf", media_type="application/pdf",
                   size_bytes=10_000_000, summary="the quarterly report")
    result = ToolResult(value={"pages": 40}, artifacts=(ref,))
    text = result.text()
    assert text.startswith('{"pages":40}\nartifacts: ')
    assert "file:///tmp/report.pdf" in text and "quarterly" in text
    assert ToolResult(artifacts=(ref,)).text().startswith("artifacts: ")
    with pytest.raises(Exception, match="serialize|Unable"):
        as_result(object())


def test_a_reconcile_hook_is_attached_once_without_mutating_the_definition() -> None:
    @tool
    def charge(cents: int) -> str:
        """Charge."""
        return "ok"

    fresh = tool(charge.function)

    def hook(key: str) -> Any:
        return NOT_APPLIED

    assert fresh.reconciler(hook) is hook
    assert fresh.reconcile is hook and fresh.definition.reconcilable
    with pytest.raises(ToolDefinitionError, match="already has"):
        fresh.reconciler(hook)
    other = tool(charge.function)
    assert not other.definition.reconcilable  # its definition was taken...
    with pytest.raises(ToolDefinitionError, match="already offered"):
        other.reconciler(hook)  # ...so a late hook would be silently ignored: refused
