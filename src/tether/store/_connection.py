"""One apsw connection shared by the event loop and a worker thread, patient with locks.

Every operation is first tried on the caller's (the event loop's) thread with SQLite's
busy timeout at zero: when nobody else holds the lock, which is nearly always, the
commit costs no thread hop. When the file is locked by another process (or this
store's connection is in use by its worker), the operation is finished in the store's
worker thread, retried with jittered exponential backoff until the bound
(``busy_timeout_ms``) has passed, and only then fails with ``StoreLockedError``. The
event loop keeps running meanwhile. A ``threading.Lock`` serialises the two threads'
use of the connection; the worker holds it for one attempt at a time (never while it
backs off), so the loop's thread waits for it at most one commit's time, never for
another process, and reads go on while a write waits for the file.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar, cast

import apsw

from ._faults import locked, rollback, translate

T = TypeVar("T")

#: First wait after a busy attempt, and the longest one (seconds).
FIRST_BACKOFF_S = 0.0005
MAX_BACKOFF_S = 0.02


class _Busy(Exception):
    """This attempt found the database locked; try again later."""


#: What the worker returns when it stopped before making another attempt.
_ABANDONED = object()


class Connection:
    """Runs units of work on one apsw connection without blocking the event loop."""

    def __init__(self, db: apsw.Connection, path: Path, busy_timeout_ms: int) -> None:
        self.db = db
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self._lock = threading.Lock()
        self._worker: ThreadPoolExecutor | None = None
        #: Attempts that found the database locked (for benchmarks and tests).
        self.busy_attempts = 0
        #: The longest a call waited for another process's lock, in seconds.
        self.longest_wait_s = 0.0

    async def run(self, work: Callable[[apsw.Connection], T], *, write: bool) -> T:
        """Run ``work`` (in one ``BEGIN IMMEDIATE`` transaction when ``write``) and
        return its result; Tether errors only."""
        # The worker holds the lock only for one attempt, which never waits for another
        # process (busy timeout 0): waiting for it costs at most one commit's time.
        with self._lock:
            try:
                return self._attempt(work, write)
            except _Busy:
                pass
        if self.busy_timeout_ms <= 0:
            raise locked(self.path, self.busy_timeout_ms)
        began = time.monotonic()
        deadline = began + self.busy_timeout_ms / 1000
        stop = threading.Event()
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(self._pool(), self._patiently, work, write, deadline, stop)
        try:
            try:
                return cast(T, await asyncio.shield(job))
            except asyncio.CancelledError:
                stop.set()  # the worker makes no further attempt...
            # ...but one under way may still commit, and the caller must learn which
            # (it folds what it committed into the run's state): wait for the worker.
            while not job.done():
                try:
                    await asyncio.shield(job)
                except asyncio.CancelledError:
                    continue
            result = job.result()
            if result is _ABANDONED:
                raise asyncio.CancelledError
            task = asyncio.current_task()
            if task is not None:
                task.cancel()  # done: the cancellation arrives at the caller's next await
            return cast(T, result)
        finally:
            self.longest_wait_s = max(self.longest_wait_s, time.monotonic() - began)

    def _pool(self) -> ThreadPoolExecutor:
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="tether-store")
        return self._worker

    def _patiently(
        self, work: Callable[[apsw.Connection], T], write: bool, deadline: float,
        stop: threading.Event,
    ) -> T | object:
        delay = FIRST_BACKOFF_S
        while not stop.is_set():
            with self._lock:
                try:
                    return self._attempt(work, write)
                except _Busy:
                    pass
            left = deadline - time.monotonic()
            if left <= 0:
                raise locked(self.path, self.busy_timeout_ms)
            stop.wait(min(left, delay * (0.5 + random.random() / 2)))
            delay = min(delay * 2, MAX_BACKOFF_S)
        return _ABANDONED  # stopped before an attempt: nothing was done

    def _attempt(self, work: Callable[[apsw.Connection], T], write: bool) -> T:
        db = self.db
        try:
            rollback(db)  # a transaction left open by a failed ROLLBACK must not linger
            if not write:  # each statement reads a snapshot; journals only grow
                return work(db)
            db.execute("BEGIN IMMEDIATE")
            result = work(db)
            db.execute("COMMIT")
            return result
        except (apsw.BusyError, apsw.LockedError) as e:
            rollback(db)
            self.busy_attempts += 1
            raise _Busy from e
        except BaseException as e:
            rollback(db)
            mapped = translate(e, self.path)
            if mapped is e:
                raise
            raise mapped from e

    def run_now(self, work: Callable[[apsw.Connection], T]) -> T:
        """Run ``work`` on the caller's thread outside a transaction (opening, closing)."""
        with self._lock:
            try:
                return work(self.db)
            except BaseException as e:
                mapped = translate(e, self.path)
                if mapped is e:
                    raise
                raise mapped from e

    def close(self) -> None:
        with self._lock:
            self.db.close()
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)
