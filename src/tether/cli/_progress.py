"""Live progress of `tether run` / `tether resume` on a terminal: the step, the tool
running, tokens and cost so far. Silent when stderr is not a terminal (piped, CI)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from types import TracebackType

from rich.console import Console
from rich.status import Status
from rich.text import Text

from ..core import (
    Event,
    ModelResponsePayload,
    ToolErrorPayload,
    ToolResultPayload,
)
from ..runtime import Delta, EventStream, Subscription


class Progress:
    """Keeps one status line up to date while a run is driven, from the Runner's live
    stream: committed events (step, tokens, cost) and deltas (tools starting, ending)."""

    def __init__(self, console: Console) -> None:
        self.enabled = console.is_terminal
        self._status = Status("starting", console=console) if self.enabled else None
        self.step = 0
        self.tokens = 0
        self.cost = 0.0
        self.running: dict[str, str] = {}

    def __enter__(self) -> Progress:
        if self._status is not None:
            self._status.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._status is not None:
            self._status.stop()

    @contextlib.asynccontextmanager
    async def follow(self, stream: EventStream) -> AsyncIterator[None]:
        """Follow ``stream`` while the block runs (nothing when not on a terminal)."""
        if not self.enabled:
            yield
            return
        subscription = stream.subscribe()
        task = asyncio.create_task(self._consume(subscription))
        try:
            yield
        finally:
            subscription.close()
            await task

    async def _consume(self, subscription: Subscription) -> None:
        async for item in subscription:
            if isinstance(item, Delta):
                self.delta(item)
            elif isinstance(item, Event):
                self.apply([item])

    def delta(self, item: Delta) -> None:
        """A tool call started or ended."""
        call_id = str(item.data.get("call_id"))
        if item.kind == "tool.started":
            self.running[call_id] = str(item.data.get("tool"))
        elif item.kind == "tool.ended":
            self.running.pop(call_id, None)
        self.step = max(self.step, item.step)
        if self._status is not None:
            self._status.update(self.line())

    def apply(self, events: Sequence[Event]) -> None:
        """Committed events."""
        for e in events:
            p = e.data
            self.step = max(self.step, e.step)
            if isinstance(p, ModelResponsePayload):
                self.tokens += int(p.usage.get("input_tokens", 0)) + int(
                    p.usage.get("output_tokens", 0))
                self.cost += float(p.cost_usd or 0.0)
            elif isinstance(p, ToolResultPayload | ToolErrorPayload):
                self.running.pop(p.call_id, None)
        if self._status is not None:
            self._status.update(self.line())

    def line(self) -> Text:
        """The status line, as plain text (journal content is never read as markup)."""
        doing = ("running " + ", ".join(sorted(set(self.running.values())))
                 if self.running else "waiting for the model")
        return Text(f"step {self.step} · {doing} · {self.tokens} tokens · ${self.cost:.4f}")
