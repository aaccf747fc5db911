"""A finding of the doctor, and what makes two findings the same."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..core import FindingPayload


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One pathology: its ``kind``, the ``steps`` involved, what and why
    (``message``), the command that shows it (``how_to_look``), and what it is about
    (``subject``: a call, a tool...; with ``kind`` and ``steps``, its identity)."""

    kind: str
    steps: tuple[int, ...]
    message: str
    how_to_look: str
    subject: str = ""

    def to_payload(self) -> dict[str, Any]:
        """The payload of the ``finding`` event that records it."""
        subject = {"subject": self.subject} if self.subject else {}
        return FindingPayload(kind=self.kind, steps=list(self.steps), message=self.message,
                              how_to_look=self.how_to_look, **subject).dump()


def finding_identity(payload: dict[str, Any]) -> tuple[str, tuple[int, ...], str]:
    """What makes two findings the same: kind, steps and subject (not the wording)."""
    steps = tuple(s for s in payload.get("steps") or [] if isinstance(s, int))
    return str(payload.get("kind")), steps, str(payload.get("subject") or "")



def show_steps(steps: Sequence[int], limit: int = 8) -> str:
    """Steps as a short list: ``1, 2, 3 and 5 more``."""
    text = ", ".join(str(s) for s in steps[:limit])
    return text + (f" and {len(steps) - limit} more" if len(steps) > limit else "")
