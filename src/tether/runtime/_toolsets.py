"""The tools of one drive: the agent's toolsets entered for the drive, asked for their
tools at every step, and each call routed to the toolset that offered its tool.

Also what the journal says of calls that wait for a human: a call held for approval
(``ApprovalRequired``) never ran; an approved one runs once, on the next resume; a
deferred one (``CallDeferred``) waits for its result (``tether resolve``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..core import (
    CallInDoubtError,
    DecisionPayload,
    Event,
    EventType,
    RunNeedsAttentionPayload,
    TetherError,
    ToolDefinitionError,
    ToolError,
    ToolErrorPayload,
    ToolResult,
    ToolResultPayload,
    ToolSpec,
)
from ..tools import StepContext, ToolContext, ToolDef, Toolset, as_result
from ._eager import Awaiting, result_payload, start

__all__ = ["Awaiting", "RunTools", "attention", "result_payload", "start", "waiting_calls"]

if TYPE_CHECKING:
    from ._call import Driving
    from ._state import OpenCall
    from ._tool_call import InDoubt



class RunTools:
    """The agent's toolsets for one drive of one run, by the names they offer.

    Reads like a mapping of the tools offered at the current step (``get``, ``in``,
    ``[name]``) to their :class:`~tether.tools.ToolDef`.
    """

    def __init__(self, ex: Driving, toolsets: Sequence[Toolset]) -> None:
        self.ex = ex
        self.toolsets = list(toolsets)
        self._defs: dict[str, ToolDef] = {}
        self._owner: dict[str, Toolset] = {}
        self.specs: tuple[ToolSpec, ...] = ()
        self._stack: contextlib.AsyncExitStack | None = None
        #: Calls waiting for a human, as the journal says when the drive starts.
        self.held: dict[str, Awaiting] = {}
        #: Calls a human approved (``decision`` ``approval``).
        self.approved: set[str] = set()

    # -- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> RunTools:
        """Enter every toolset (in order; one that fails exits those entered), then
        list the tools of the run's current step."""
        async with contextlib.AsyncExitStack() as stack:
            for toolset in self.toolsets:
                await stack.enter_async_context(toolset)
            await self.offer(self.ex.state.step)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(kind, error, tb)

    def _then(self) -> str:
        """What to do once a toolset that failed is fixed: nothing is journaled yet
        for a new run (run it again), a run that exists is resumed."""
        fix = "check the toolset's server or connection, then "
        if self.ex.state.seq == 0:
            return fix + "run the agent again (nothing was journaled: no run to resume)"
        return fix + f"`tether resume {self.ex.state.run_id}`"

    # -- the tools of a step ----------------------------------------------------------

    async def offer(self, step: int) -> tuple[ToolSpec, ...]:
        """Ask every toolset for its tools at ``step``; return their specs.

        Raises:
            ToolDefinitionError: two toolsets offer a tool of one name.
            ToolError: a toolset failed to list its tools.
        """
        ctx = StepContext(run_id=self.ex.state.run_id, agent=self.ex.agent.name, step=step)
        defs: dict[str, ToolDef] = {}
        owner: dict[str, Toolset] = {}
        for toolset in self.toolsets:
            try:
                listed = await toolset.list_tools(ctx)
            except TetherError:
                raise
            except Exception as e:
                raise ToolError(f"toolset {toolset!r} failed to list its tools at step "
                                f"{step}: {type(e).__name__}: {e}",
                                hint=self._then()) from e
            for d in listed:
                if d.name in defs:
                    raise ToolDefinitionError(
                        f"two toolsets of agent {self.ex.agent.name!r} offer a tool named "
                        f"{d.name!r} at step {step}",
                        hint="wrap one in PrefixedToolset, or filter it out")
                defs[d.name] = d
                owner[d.name] = toolset
        if defs != self._defs:  # ToolDefs compare by value: a new spec only on a change
            self.specs = tuple(d.spec for d in defs.values())
            self._defs, self._owner = defs, owner
        else:
            self._owner = owner
        return self.specs

    def get(self, name: str) -> ToolDef | None:
        """The tool offered as ``name`` at this step, if any."""
        return self._defs.get(name)

    def __getitem__(self, name: str) -> ToolDef:
        return self._defs[name]

    def __contains__(self, name: object) -> bool:
        return name in self._defs

    def __iter__(self) -> Iterator[str]:
        return iter(self._defs)

    def values(self) -> list[ToolDef]:
        """The tools offered at this step."""
        return list(self._defs.values())

    # -- calls ----------------------------------------------------------------------

    async def call(self, name: str, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        """Run a call through the toolset that offered ``name``; live subscribers see
        it start and end (``tool.started`` / ``tool.ended`` deltas, not journaled)."""
        stream = self.ex.runner.stream
        if not stream.subscribed:
            return as_result(await self._owner[name].call(name, arguments, ctx))
        stream.delta(ctx.run_id, "tool.started", ctx.step,
                     {"call_id": ctx.call_id, "tool": name, "attempt": ctx.attempt})
        outcome = "error"
        try:
            result = as_result(await self._owner[name].call(name, arguments, ctx))
            outcome = "ok"
            return result
        finally:
            stream.delta(ctx.run_id, "tool.ended", ctx.step,
                         {"call_id": ctx.call_id, "tool": name, "outcome": outcome})

    async def reconcile(self, name: str, key: str) -> Any:
        """The reconcile hook of the toolset that offered ``name``."""
        return await self._owner[name].reconcile(name, key)


def waiting_calls(events: Sequence[Event]) -> tuple[dict[str, Awaiting], set[str]]:
    """From a run's journal: the open calls that wait for a human (why), and the calls
    a human approved.

    A call held for approval never ran. Once approved it runs on the next resume; if
    a later resume finds it still open, that drive may have started it, so it is no
    longer *held*: it is in doubt like any call cut short, and follows its tool's policy.
    """
    held: dict[str, Awaiting] = {}
    approved: set[str] = set()
    fresh: set[str] = set()  # approved, and no resume has started since
    for e in events:
        p = e.data
        if isinstance(p, RunNeedsAttentionPayload):
            for c in p.calls or ():  # each call a plain JSON object
                if c.get("awaiting") in ("approval", "result"):
                    held[c["call_id"]] = c["awaiting"]
        elif isinstance(p, DecisionPayload) and p.decision == "approval":
            if p.chosen == "approve" and p.call_id is not None:
                approved.add(p.call_id)
                fresh.add(p.call_id)
        elif e.type == EventType.RUN_RESUMED:
            for call_id in fresh:  # that drive may have started it
                held.pop(call_id, None)
            fresh = set()
        elif isinstance(p, ToolResultPayload | ToolErrorPayload):
            held.pop(p.call_id, None)
    return held, approved


def attention(ex: Driving, calls: Sequence[tuple[OpenCall, InDoubt]]) -> Event:
    """The ``run.needs_attention`` of a step whose ``calls`` stay open: in doubt (a
    human checks the world and resolves them), waiting for approval, or waiting for a
    result from outside. Each call says which (``awaiting``) and what to do."""
    run_id, step = ex.state.run_id, ex.state.step
    unsure = [(c, d) for c, d in calls if d.awaiting is None]
    approval = [c for c, d in calls if d.awaiting == "approval"]
    deferred = [c for c, d in calls if d.awaiting == "result"]
    parts, hints = [], []
    if unsure:
        names = ", ".join(f"{c.runs} (call {c.call_id}: {d.why})" for c, d in unsure)
        parts.append(f"cannot tell whether {names} took effect")
        hints.append("check the outside world, then `tether resolve RUN_ID CALL_ID "
                     "--result ...`")
    if approval:
        parts.append(", ".join(f"{c.tool} (call {c.call_id})" for c in approval)
                     + " needs a human's approval")
        hints.append("`tether approve RUN_ID CALL_ID` (or `--deny --reason ...`)")
    if deferred:
        parts.append(", ".join(f"{c.tool} (call {c.call_id})" for c in deferred)
                     + " waits for its result from outside the run")
        hints.append("`tether resolve RUN_ID CALL_ID --result ...` once it is known")
    hint = "; ".join(hints) + "; then `tether resume RUN_ID`"
    error: dict[str, Any]
    if unsure:
        error = CallInDoubtError("; ".join(parts), hint=hint, run_id=run_id,
                                 step=step).to_dict()
    else:
        kind = "ApprovalRequired" if approval else "CallDeferred"
        error = {"type": kind, "message": "; ".join(parts), "retryable": False,
                 "hint": hint}
    return ex.event(EventType.RUN_NEEDS_ATTENTION, step, RunNeedsAttentionPayload(
        error=error,
        calls=[{"call_id": c.call_id, "tool": c.runs, "arguments": c.arguments,
                "idempotency_key": c.idempotency_key, "why": d.why,
                **({"awaiting": d.awaiting} if d.awaiting else {})}
               for c, d in calls],
    ).dump())
