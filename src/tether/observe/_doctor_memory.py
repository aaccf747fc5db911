"""A doctor detector for agents with memory: evidence the context builder left out
that the model then fetched again.

``refetched_evidence``
    A tool call repeating an earlier successful call (same tool, same arguments) made
    after the context built for its step had masked (a preview and a handle) or
    dropped the turn that held the earlier result to fit the budget: the model paid
    for the call twice, and for its result in the prompt again. Read from the
    ``context.built`` events' cut points (``mask_cut``, ``drop_cut``, in turns) and
    the turns of the run (a turn starts with each model message the run keeps).
    The memory tools (``recall``, ``expand``, ``remember``, ``forget``) are not judged:
    calling ``expand`` is the intended way back to a masked result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..core import Event, EventType
from ._finding import Finding

_MEMORY_TOOLS = frozenset({"recall", "expand", "remember", "forget"})


def _key(tool: Any, arguments: Any) -> str:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError:
            pass
    return f"{tool}:{json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=str)}"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def refetched_evidence(run_id: str, events: Sequence[Event]) -> list[Finding]:
    """``refetched_evidence`` findings of one run's events (see the module)."""
    turns: list[int] = []  # the step of each turn of the run, in order
    #: per step: the steps whose turns its built context masked or dropped
    hidden: dict[int, dict[int, str]] = {}
    built: dict[int, tuple[int, int]] = {}  # step -> (tokens, budget)
    intents: dict[str, tuple[int, str]] = {}  # call_id -> (step, key)
    done: dict[str, list[int]] = {}  # key -> steps where a call of it succeeded
    found: list[Finding] = []
    seen: set[tuple[str, int]] = set()
    for e in events:
        p = e.payload
        if e.type == EventType.MODEL_RESPONSE:
            rejected = p.get("rejected")
            message = p.get("message") or {}
            if not rejected or (rejected == "truncated"
                                and (message.get("content") or message.get("tool_calls"))):
                turns.append(e.step)
        elif e.type == EventType.DECISION and p.get("decision") == "repair" \
                and "message" in p:
            turns.append(e.step)
        elif e.type == EventType.CONTEXT_BUILT:
            raw = p.get("recipe")
            recipe: dict[str, Any] = raw if isinstance(raw, dict) else {}
            drop, mask = _int(recipe.get("drop_cut")), _int(recipe.get("mask_cut"))
            first = _int(recipe.get("turns")) - len(turns)  # the thread's turns come first
            hidden[e.step] = {step: ("dropped" if first + i < drop else "masked")
                              for i, step in enumerate(turns) if first + i < max(drop, mask)}
            built[e.step] = (_int(p.get("tokens")), _int(p.get("budget")))
        elif e.type == EventType.TOOL_INTENT:
            tool = p.get("tool")
            if tool in _MEMORY_TOOLS:
                continue
            key = _key(tool, p.get("arguments"))
            intents[str(p.get("call_id"))] = (e.step, key)
            how = hidden.get(e.step, {})
            earlier = [s for s in done.get(key, ()) if s < e.step and s in how]
            if earlier and (key, e.step) not in seen:
                seen.add((key, e.step))
                step = earlier[-1]
                tokens, budget = built.get(e.step, (0, 0))
                found.append(Finding(
                    kind="refetched_evidence", steps=(step, e.step), subject=key,
                    message=(
                        f"step {e.step} called {_clip(key)} again: its result from step "
                        f"{step} had been {how[step]} from the prompt to fit the "
                        f"{budget:,}-token budget (the prompt used {tokens:,}), so the "
                        "model fetched it again. Raise MemoryConfig.budget, or have the "
                        "agent expand(handle) a masked result instead of calling again"),
                    how_to_look=f"tether trace {run_id} --prompt {e.step}"))
        elif e.type == EventType.TOOL_RESULT:
            where = intents.get(str(p.get("call_id")))
            if where is not None:
                done.setdefault(where[1], []).append(where[0])
    return found
