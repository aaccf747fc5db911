"""A store that SIGKILLs its process right after a given commit, for crash tests run as
child processes (``tests/runtime/crash_agent.py``, ``tests/secrets/sealed_agent.py``)."""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from typing import Any

from tether.core import Event
from tether.store import Lease, SQLiteStore


class KillingStore(SQLiteStore):
    """SIGKILLs the process right after its ``kill_after``-th commit (0: never)."""

    def __init__(self, path: str, kill_after: int) -> None:
        super().__init__(path)
        self.kill_after = kill_after
        self.commits = 0

    def _committed(self) -> None:
        self.commits += 1
        if self.commits == self.kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    async def append(self, events: Sequence[Event], *, lease: Lease | None = None) -> None:
        await super().append(events, lease=lease)
        self._committed()

    async def acquire(self, events: Sequence[Event], **kwargs: Any) -> Lease:
        lease = await super().acquire(events, **kwargs)
        self._committed()
        return lease
