"""Events out, live: a Runner's stream of committed events and unjournaled deltas.

Every batch a run commits is published once it is durable, as the journal shows it
(redacted); *deltas* are live updates that are never journaled (a tool call starting
and ending). Subscribers read the stream at their own pace, isolated from the run:

- publishing never blocks and never raises: each subscriber has a bounded buffer
  (``maxsize`` items); when it is full, further items are dropped for that
  subscriber alone and counted (``Subscription.dropped``), and the next item it
  receives is a :class:`Lagged` saying how many it missed, so a slow consumer knows
  and can re-read the journal (``Store.read``) for the committed part;
- a subscriber that raises, stalls or never reads affects nothing but itself;
- a subscription is safe to consume from any event loop or thread.

The Runner's observers (plain callables of a batch of events, such as ``JsonlLog``
and ``OtelObserver``) are subscribers too, each consumed by a thread of its own; a
drive that ends waits (at most ``flush_s``) for them to catch up, so a log file is
complete when ``Runner.run`` returns.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..core import Event, ModelBehaviorError, UsageError
from ..models import Model, ModelRequest, ModelResponse, StreamingModel

if TYPE_CHECKING:
    from ._call import Driving

_log = logging.getLogger("tether")

#: Called with committed events (in commit order). An observer that raises is
#: reported once and skipped for that batch, never breaking the commit or the run.
Observer = Callable[[Sequence[Event]], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Delta:
    """A live update of a run that is not journaled.

    ``kind`` is ``tool.started`` (``call_id``, ``tool``, ``attempt``), ``tool.ended``
    (``call_id``, ``tool``, ``outcome``: ``ok`` or ``error``, the latter also for a
    call stopped by a signal or given up on) or ``model.token`` (``text``, ``model``:
    a chunk of a streamed answer, only to subscribers that asked for tokens); ``data``
    holds those fields. ``ts`` is
    the wall-clock time it was published.
    """

    run_id: str
    kind: str
    step: int
    data: dict[str, Any] = field(default_factory=dict)
    ts: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Lagged:
    """This subscriber missed ``dropped`` items (its buffer was full) just before the
    next item it receives."""

    dropped: int


#: What a subscription yields.
StreamItem = Event | Delta | Lagged


class Subscription:
    """One subscriber's view of an :class:`EventStream`: an async iterator (also
    ``get_blocking`` for threads) over what was published after it subscribed.

    Use it as ``async with runner.stream.subscribe() as sub: async for item in sub``;
    it ends once closed (``close()``, leaving the ``with`` block).
    """

    def __init__(self, stream: EventStream, *, maxsize: int, run_id: str | None,
                 deltas: bool, tokens: bool = False) -> None:
        if maxsize < 1:
            raise UsageError(f"a subscription holds at least 1 item, not {maxsize}",
                             hint="subscribe(maxsize=...) with a positive size")
        self._stream = stream
        self.maxsize = maxsize
        self.run_id = run_id
        self.deltas = deltas
        self.tokens = tokens
        #: Items dropped because the buffer was full, since subscribing.
        self.dropped = 0
        self._gap = 0
        self._items: collections.deque[StreamItem] = collections.deque()
        self._ready = threading.Condition(threading.Lock())
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None
        self.closed = False

    def wants(self, item: Event | Delta) -> bool:
        """Whether this subscriber takes ``item`` (its run, deltas or not)."""
        if isinstance(item, Delta) and not (
                self.tokens if item.kind == "model.token" else self.deltas):
            return False
        return self.run_id is None or item.run_id == self.run_id

    def offer(self, item: Event | Delta) -> None:
        """Buffer ``item`` (publisher side); never blocks for longer than a list append,
        drops it when the buffer is full."""
        with self._ready:
            if self.closed:
                return
            if len(self._items) >= self.maxsize:
                self._gap += 1
                self.dropped += 1
                return
            if self._gap:
                self._items.append(Lagged(dropped=self._gap))
                self._gap = 0
            self._items.append(item)
            self._ready.notify()
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            _wake(*waiter)

    def close(self) -> None:
        """Stop receiving; a reader waiting gets the end of the iteration."""
        self._stream._unsubscribe(self)
        with self._ready:
            self.closed = True
            self._ready.notify_all()
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            _wake(*waiter)

    def get_nowait(self) -> StreamItem | None:
        """The next buffered item, or None."""
        with self._ready:
            return self._items.popleft() if self._items else None

    def get_blocking(self, timeout: float | None = None) -> StreamItem | None:
        """The next item, waiting up to ``timeout`` seconds (a thread's consumer);
        None on timeout or once closed and drained."""
        with self._ready:
            if not self._items and not self.closed:
                self._ready.wait(timeout)
            return self._items.popleft() if self._items else None

    async def get(self) -> StreamItem:
        """The next item, waiting for it.

        Raises:
            StopAsyncIteration: the subscription is closed and drained.
        """
        while True:
            with self._ready:
                if self._items:
                    return self._items.popleft()
                if self.closed:
                    raise StopAsyncIteration
                loop = asyncio.get_running_loop()
                future: asyncio.Future[None] = loop.create_future()
                self._waiter = (loop, future)
            try:
                await future
            finally:
                with self._ready:
                    if self._waiter is not None and self._waiter[1] is future:
                        self._waiter = None

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> StreamItem:
        return await self.get()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _wake(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
    def done() -> None:
        if not future.done():
            future.set_result(None)

    if asyncio.events._get_running_loop() is loop:
        done()
    else:
        try:
            loop.call_soon_threadsafe(done)
        except RuntimeError:  # that loop is closed: nobody waits any more
            pass


class _Pump:
    """Feeds a plain observer from a subscription, in a thread of its own that ends
    when idle and starts again with the next item."""

    IDLE_S = 1.0

    def __init__(self, stream: EventStream, observer: Observer, maxsize: int) -> None:
        self.observer = observer
        self.sub = Subscription(stream, maxsize=maxsize, run_id=None, deltas=False)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._busy = 0  # items taken and not yet handed to the observer
        self._failed = False

    def kick(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tether-observer",
                                                daemon=True)
                self._thread.start()

    def idle(self) -> bool:
        with self._lock:
            return self._busy == 0 and not self.sub._items

    def _run(self) -> None:
        while True:
            first = self.sub.get_blocking(self.IDLE_S)
            with self._lock:
                if first is None:
                    if not self.sub._items:  # idle: end; the next item starts a thread
                        self._thread = None
                        return
                    continue
                self._busy += 1
            batch = [first]
            while (more := self.sub.get_nowait()) is not None:  # what is there: one batch
                batch.append(more)
            try:
                self._deliver(batch)
            finally:
                with self._lock:
                    self._busy -= 1

    def _deliver(self, batch: list[StreamItem]) -> None:
        events = [e for e in batch if isinstance(e, Event)]
        lost = sum(e.dropped for e in batch if isinstance(e, Lagged))
        if lost:
            _log.warning("observer %r fell behind: %d events were not handed to it (the "
                         "journal has them all)", self.observer, lost)
        if not events:
            return
        try:
            self.observer(events)
        except Exception as e:
            if not self._failed:
                self._failed = True
                _log.error("observer %r failed and is skipped for this batch: %s: %s "
                           "(the run goes on; its journal is complete)",
                           self.observer, type(e).__name__, e)


class EventStream:
    """A Runner's live stream: committed events and deltas, to every subscriber.

    Args:
        maxsize: Items each subscriber may have waiting before further ones are
            dropped for it (and counted); a subscriber may ask for another size.
        flush_s: How long a drive that ends waits for the observers to catch up.
    """

    def __init__(self, *, maxsize: int = 4096, flush_s: float = 5.0) -> None:
        self.maxsize = maxsize
        self.flush_s = flush_s
        self._subs: tuple[Subscription, ...] = ()
        self._pumps: tuple[_Pump, ...] = ()
        self._lock = threading.Lock()

    @property
    def subscribed(self) -> bool:
        """Whether anyone listens (publishing is skipped otherwise)."""
        return bool(self._subs)

    def wants_tokens(self, run_id: str) -> bool:
        """Whether a subscriber takes the model tokens of ``run_id``."""
        subs = self._subs
        return bool(subs) and any(s.tokens and s.run_id in (None, run_id) for s in subs)

    def subscribe(self, *, run_id: str | None = None, deltas: bool = True,
                  tokens: bool = False, maxsize: int | None = None) -> Subscription:
        """A new subscriber of what is published from now on.

        Args:
            run_id: Only this run's items; default every run the Runner drives.
            deltas: Also the live deltas of tool calls (not only committed events).
            tokens: Also ``model.token`` deltas: the step loop then streams the answers
                of models that can (``StreamingModel``), each chunk redacted on its own.
            maxsize: Its buffer; default the stream's ``maxsize``.
        """
        sub = Subscription(self, maxsize=self.maxsize if maxsize is None else maxsize,
                           run_id=run_id, deltas=deltas, tokens=tokens)
        with self._lock:
            self._subs = (*self._subs, sub)
        return sub

    def observe(self, observer: Observer) -> None:
        """Hand every committed batch to ``observer``, in a thread of its own."""
        pump = _Pump(self, observer, self.maxsize)
        with self._lock:
            self._subs = (*self._subs, pump.sub)
            self._pumps = (*self._pumps, pump)

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs = tuple(s for s in self._subs if s is not sub)

    def publish(self, events: Sequence[Event]) -> None:
        """Hand committed ``events`` (as the journal shows them) to every subscriber."""
        for sub in self._subs:
            for e in events:
                if sub.wants(e):
                    sub.offer(e)
        for pump in self._pumps:
            pump.kick()

    def delta(self, run_id: str, kind: str, step: int, data: dict[str, Any]) -> None:
        """Publish a live, unjournaled update of ``run_id``."""
        if not self._subs:
            return
        item = Delta(run_id=run_id, kind=kind, step=step, data=data, ts=time.time())
        for sub in self._subs:
            if sub.wants(item):
                sub.offer(item)

    async def flush(self) -> bool:
        """Wait (at most ``flush_s``) until every observer has been handed what was
        published; False if one is still behind (it goes on in its thread)."""
        if not self._pumps:
            return True
        deadline = time.monotonic() + self.flush_s
        while not all(p.idle() for p in self._pumps):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.002)
        return True


async def complete(ex: Driving, model: Model, request: ModelRequest) -> ModelResponse:
    """One model attempt: ``model.complete``, or, while a subscriber takes this run's
    tokens and the model can stream, its stream, each chunk published (redacted on its
    own) as a ``model.token`` delta. Either way the answer is the complete response."""
    stream = ex.runner.stream
    run_id = ex.state.run_id
    if not (stream.wants_tokens(run_id) and isinstance(model, StreamingModel)):
        return await model.complete(request)
    final: ModelResponse | None = None
    label = f"{model.provider}:{model.model_name}"
    async for piece in model.stream(request):
        if piece.text:
            stream.delta(run_id, "model.token", request.step,
                         {"text": ex.runner.redactor.redact(piece.text), "model": label})
        if piece.response is not None:
            final = piece.response
    if final is None:
        raise ModelBehaviorError(f"{label} ended its stream without a complete response",
                                 hint="a StreamingModel's last delta carries the response",
                                 provider=model.provider, model=model.model_name)
    return final
