"""Working memory: the current step's inputs, outputs and scratch entries.

A step of an agent with memory has a working memory: the model's message and the
tool calls it asked for (inputs), each call's result once committed (outputs), and
the entries its tools put there (``ctx.working.put``). It is a fold over the journal
(:class:`WorkingState`, part of ``RunState``), so a resumed run rebuilds it exactly.

**Visibility.** A call sees the step's inputs, every outcome and entry committed so
far, and its own entries (committed or not). Another call's entries become visible
when that call's outcome commits: an attempt that is retried, falls back, or dies with
the process leaves nothing. After a crash, a call run again sees what was committed
before the crash: what it would have seen had it started at that instant.

**Journal.** A call's ``put`` and ``promote`` are one ``memory.working`` event
(``ops``) committed in the transaction of the call's outcome. When every call of the
step has its outcome, promoted entries are written to long-term memory (a
``memory.write`` each, with provenance) together with a ``memory.working`` that closes
the step (``step_end``, ``promoted``, ``dropped``), in one transaction; a step with
nothing promoted is closed in the transaction of the next ``model.request``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..core import Event, EventType, UsageError

#: Longest key of a working-memory entry (characters).
MAX_KEY_CHARS = 256
#: Largest value of an entry, as JSON (characters).
MAX_VALUE_CHARS = 1_000_000


@dataclass(slots=True, kw_only=True)
class WorkingState:
    """The fold of the current step's working memory (one per run)."""

    step: int = 0
    message: str | None = None
    calls: tuple[dict[str, Any], ...] = ()
    #: Committed outcomes of the step's calls: content by call id, in commit order.
    outputs: dict[str, str] = field(default_factory=dict)
    #: Committed entries: ``key -> (value, call_id)``; a later commit wins.
    entries: dict[str, tuple[Any, str]] = field(default_factory=dict)
    #: Committed promotions: ``key -> {"as_key", "call_id"}``.
    promotions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The step's ``memory.working`` ``step_end`` is committed.
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def apply(self, event: Event) -> None:
        """Fold one committed event (only the few kinds that concern working memory)."""
        kind = event.type
        p = event.payload
        if kind == EventType.MODEL_RESPONSE:
            if p.get("rejected"):
                return
            message = p.get("message") or {}
            calls = tuple({"call_id": c.get("id"), "tool": c.get("name"),
                           "arguments": _arguments(c.get("arguments"))}
                          for c in message.get("tool_calls") or ())
            with self.lock:
                self.step, self.message, self.calls = event.step, message.get("content"), calls
                self.outputs, self.entries, self.promotions = {}, {}, {}
                self.closed = False
        elif event.step != self.step:
            return
        elif kind in (EventType.TOOL_RESULT, EventType.TOOL_ERROR):
            with self.lock:
                self.outputs = {**self.outputs, p["call_id"]: p.get("content") or ""}
        elif kind == EventType.MEMORY_WORKING:
            with self.lock:
                if p.get("step_end"):
                    self.closed = True
                    return
                call_id = p.get("call_id") or ""
                entries, promotions = dict(self.entries), dict(self.promotions)
                for op in p.get("ops") or ():
                    if op.get("op") == "put":
                        entries[op["key"]] = (op.get("value"), call_id)
                    elif op.get("op") == "promote":
                        promotions[op["key"]] = {"as_key": op.get("as_key"),
                                                 "call_id": call_id}
                self.entries, self.promotions = entries, promotions

    @property
    def ended(self) -> bool:
        """Every call of the step has a committed outcome."""
        return bool(self.calls) and all(c["call_id"] in self.outputs for c in self.calls)

    def to_close(self) -> bool:
        """The step ended with entries and its end is not journaled yet."""
        return not self.closed and bool(self.entries or self.promotions) and self.ended

    def end_payload(self, promoted: list[dict[str, Any]]) -> dict[str, Any]:
        """The ``memory.working`` payload that closes the step."""
        kept = {p["key"] for p in promoted}
        return {"step_end": True, "promoted": promoted,
                "dropped": [k for k in self.entries if k not in kept]}


def _arguments(raw: Any) -> Any:
    if raw is None:
        return {}
    if isinstance(raw, str):
        try:
            return json.loads(raw or "{}")
        except ValueError:
            return raw
    return raw


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_CHARS:
        raise UsageError(
            f"a working-memory key must be a string of 1 to {MAX_KEY_CHARS} characters, "
            f"not {type(key).__name__} {str(key)[:40]!r}",
            hint="use a short descriptive string key, e.g. ctx.working.put('order_id', 42)")
    return key


def _copy_value(value: Any) -> Any:
    """A JSON-compatible deep copy of ``value`` (what the journal will hold)."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise UsageError(
            f"a working-memory value must be JSON-compatible: {e}",
            hint="put strings, numbers, booleans, None, lists and dicts with string keys",
        ) from e
    if len(text) > MAX_VALUE_CHARS:
        raise UsageError(
            f"a working-memory value of {len(text)} characters as JSON is above the "
            f"limit of {MAX_VALUE_CHARS}",
            hint="store a large result with the remember tool or return it as the "
                 "tool's result; keep a handle in working memory")
    return json.loads(text)


class StepView:
    """One call attempt's view of its step's working memory
    (:class:`tether.tools.WorkingMemory`). Safe to use from a sync tool's thread."""

    def __init__(self, state: WorkingState, *, call_id: str, tool: str) -> None:
        self._state = state
        self._call_id = call_id
        self._tool = tool
        self._own: dict[str, Any] = {}
        self._ops: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def step(self) -> int:
        return self._state.step

    @property
    def message(self) -> str | None:
        return self._state.message

    @property
    def calls(self) -> tuple[Mapping[str, Any], ...]:
        return tuple(_copy_value(list(self._state.calls)))

    def outputs(self) -> dict[str, str]:
        with self._state.lock:
            outputs = self._state.outputs
        return {k: v for k, v in outputs.items() if k != self._call_id}

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            if key in self._own:
                return _copy_value(self._own[key])
        with self._state.lock:
            found = self._state.entries.get(key)
        return default if found is None else _copy_value(found[0])

    def items(self) -> dict[str, Any]:
        with self._state.lock:
            committed = {k: v for k, (v, _) in self._state.entries.items()}
        with self._lock:
            merged = {**committed, **self._own}
        return _copy_value(merged)  # type: ignore[no-any-return]

    def put(self, key: str, value: Any) -> None:
        key = _check_key(key)
        copied = _copy_value(value)
        with self._lock:
            self._check_open()
            self._own[key] = copied
            self._ops.append({"op": "put", "key": key, "value": copied})

    def promote(self, key: str, *, as_key: str | None = None) -> None:
        key = _check_key(key)
        if as_key is not None:
            _check_key(as_key)
        with self._lock:
            self._check_open()
            own = key in self._own
        if not own:
            with self._state.lock:
                if key not in self._state.entries:
                    raise UsageError(
                        f"cannot promote {key!r}: no such entry in step "
                        f"{self._state.step}'s working memory",
                        hint="put the entry first (ctx.working.put(key, value))")
        with self._lock:
            self._ops.append({"op": "promote", "key": key, "as_key": as_key})

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError(
                f"call {self._call_id}'s working memory is closed: its outcome is "
                "committed (or the call was given up on)",
                hint="put entries before the tool returns")

    def take(self, journal_event: Any, step: int) -> list[Event]:
        """Close the view; the ``memory.working`` event of its ops (none if empty).
        ``journal_event`` is ``Execution.event``."""
        with self._lock:
            self._closed = True
            ops, self._ops = self._ops, []
        if not ops:
            return []
        event: Event = journal_event(EventType.MEMORY_WORKING, step, {
            "call_id": self._call_id, "tool": self._tool, "ops": ops})
        return [event]
