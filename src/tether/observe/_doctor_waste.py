"""Two doctor detectors about effort that led nowhere: steps spent on failing calls
before the right one, and loops of near-identical calls."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from ..core import (
    Event,
    ModelResponsePayload,
    ToolErrorPayload,
    ToolResultPayload,
)
from ._finding import Finding, show_steps

_DIGITS = re.compile(r"\d+")


def _shape(value: Any) -> str:
    """A value with its digits left out: ``page 3 of 0 results`` -> ``page # of # results``."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return _DIGITS.sub("#", " ".join(text.split()))


def _echo_free(content: Any, value: Any) -> str:
    """A result with the counter's value (as a whole word) left out: what it says
    beyond echoing the argument (``page 3: 0 results`` -> ``page #: 0 results``)."""
    text = " ".join(str(content).split())
    word = value if isinstance(value, str) else json.dumps(value)
    if not word:
        return text
    return re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", "#", text)


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def wasted_steps(run_id: str, events: Sequence[Event], min_steps: int) -> list[Finding]:
    """``wasted_steps``: ``min_steps`` or more consecutive steps whose tool calls all
    ended in errors, followed by a step where one of those tools succeeded."""
    outcomes: dict[int, list[ToolResultPayload | ToolErrorPayload]] = {}
    used: dict[int, int] = {}
    for e in events:
        p = e.data
        if isinstance(p, ToolResultPayload | ToolErrorPayload):
            outcomes.setdefault(e.step, []).append(p)
        elif isinstance(p, ModelResponsePayload):
            used[e.step] = used.get(e.step, 0) + int(p.usage.get("input_tokens") or 0) + int(
                p.usage.get("output_tokens") or 0)
    found: list[Finding] = []
    streak: list[int] = []
    for step in sorted(outcomes):
        if streak and step != streak[-1] + 1:
            streak = []
        if all(isinstance(o, ToolErrorPayload) for o in outcomes[step]):
            streak.append(step)
            continue
        failed = {o.tool for s in streak for o in outcomes[s]}
        succeeded = sorted(failed & {o.tool for o in outcomes[step]
                                     if isinstance(o, ToolResultPayload)})
        if len(streak) >= min_steps and succeeded:
            tokens = sum(used.get(s, 0) for s in streak)
            errors = sorted({str((getattr(o, "error", None) or {}).get("type") or "error")
                             for s in streak for o in outcomes[s]})
            tool = succeeded[0]
            found.append(Finding(
                kind="wasted_steps", steps=tuple(streak), subject=tool,
                message=f"{len(streak)} step(s) (steps {show_steps(streak)}) each ended in "
                        f"a tool error ({', '.join(errors)}) before step {step}'s call of "
                        f"{tool} succeeded: {len(streak)} wasted step(s), {tokens} tokens. "
                        "The model is guessing at the tool's arguments: a clearer tool "
                        "description, schema or error message would get it right first.",
                how_to_look=f"tether trace {run_id} --full",
            ))
        streak = []
    return found


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _one_difference(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    if a.keys() != b.keys():
        return None
    differing = [k for k in a if a[k] != b[k]]
    return differing[0] if len(differing) == 1 else None


def call_loops(run_id: str, calls: Sequence[tuple[int, str, str, Any]],
               outcomes: Sequence[Event], min_calls: int) -> list[Finding]:
    """``call_loop``: ``min_calls`` or more consecutive calls ``(step, call_id, tool,
    arguments)`` of one tool whose arguments differ only in one counter-like field and
    whose results say the same thing but for echoing that field.""" 
    content = {p.call_id: p.content for p in (e.data for e in outcomes)
               if isinstance(p, ToolResultPayload | ToolErrorPayload)}
    found: list[Finding] = []
    i = 0
    while i < len(calls):
        _, first_id, tool, first = calls[i]
        if not isinstance(first, dict) or first_id not in content:
            i += 1
            continue
        field: str | None = None
        seen: set[str] = set()
        last: Any = None
        j = i + 1
        while j < len(calls):
            _, call_id, name, arguments = calls[j]
            if name != tool or not isinstance(arguments, dict) or call_id not in content:
                break
            key = _one_difference(first, arguments)
            if key is None or (field is not None and key != field):
                break
            value = arguments[key]
            if (_shape(value) != _shape(first[key]) or _key(value) in seen or value == first[key]
                    or _echo_free(content[call_id], value)
                    != _echo_free(content[first_id], first[key])):
                break
            field = key
            seen.add(_key(value))
            last = value
            j += 1
        if field is not None and j - i >= min_calls:
            steps = tuple(sorted({calls[k][0] for k in range(i, j)}))
            values = f"{json.dumps(first[field])} … {json.dumps(last)}"
            found.append(Finding(
                kind="call_loop", steps=steps, subject=f"{tool}.{field}",
                message=f"{j - i} calls of {tool} in a row differ only in {field} ({values}) "
                        f"and all returned results of the same shape "
                        f"({_clip(str(content[first_id]))!r}): the agent is counting through "
                        "results that tell it nothing new. Stop at an empty or unchanged "
                        "result, or let the tool say there is nothing more.",
                how_to_look=f"tether trace {run_id} --full",
            ))
            i = j
        else:
            i += 1
    return found
