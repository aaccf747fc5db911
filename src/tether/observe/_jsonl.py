"""The live JSONL step log: every committed event, one JSON object a line.

The line format is :meth:`tether.core.Event.to_dict` (``run_id``, ``seq``, ``type``,
``step``, ``ts``, ``span_id``, ``parent_span_id``, ``duration_ms``, ``payload``), the
same shape ``tether export --format jsonl`` and ``tether show --json`` use, documented
event by event in ``docs/journal.md``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from ..core import Event, Redactor

#: One encoder for every line (``json.dumps`` with options builds a new one per call).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _line(event: Event) -> str:
    return _ENCODER.encode(event.to_dict()) + "\n"


def event_lines(events: Iterable[Event], *, redactor: Redactor | None = None) -> Iterable[str]:
    """The JSONL lines (each ending in a newline) of ``events``, redacted if asked."""
    for event in events:
        yield _line(redactor.redact_event(event) if redactor is not None else event)


def read_jsonl(path: str | os.PathLike[str]) -> list[Event]:
    """Load events back from a JSONL step log or export."""
    events = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                data: dict[str, Any] = json.loads(line)
                events.append(Event(**data))
    return events


class JsonlLog:
    """An observer that mirrors every committed event to a JSONL file, as it happens.

    Use it as ``Runner(store, observers=[JsonlLog("run.jsonl")])``. Each batch of events
    the Runner commits is written in one ``write`` and flushed to the operating system
    before the step goes on, so ``tail -f run.jsonl`` sees a step as soon as the
    journal has it. The file is not fsynced: the journal is the durable copy.

    Args:
        path: The file; its directory is created. Opened for appending, so several
            runs (or a resumed run) can share one log.
        redactor: Applied to each event before it is written. The Runner already
            redacts what it commits when it is given a redactor; pass one here when
            it is not, or to scrub more.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, redactor: Redactor | None = None
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.redactor = redactor
        self._file: IO[str] | None = open(self.path, "a", encoding="utf-8")

    def __call__(self, events: Sequence[Event]) -> None:
        """Write one committed batch and flush it."""
        if self._file is None:
            raise ValueError(f"JsonlLog({str(self.path)!r}) is closed")
        self._file.write("".join(event_lines(events, redactor=self.redactor)))
        self._file.flush()

    def close(self) -> None:
        """Close the file; further batches raise ``ValueError``."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> JsonlLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
