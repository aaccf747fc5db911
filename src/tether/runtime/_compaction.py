"""Fitting a conversation back into the context window after ``ContextLengthError``.

A simple, correct first version (the memory layer will replace it): keep the system
prompt and the task, drop the oldest half of the turns that follow, and never split
an assistant message from the tool results that answer it. What is dropped stays in
the journal; the model gets a note saying how much was left out.
"""

from __future__ import annotations

from ..core import ContextLengthError, EventType
from ._call import Journaling


def droppable_range(roles: list[str]) -> tuple[int, int] | None:
    """The slice ``[start, end)`` of messages to drop, or None if nothing can go.

    Turns start at each assistant message and run up to the next one, so a turn holds an
    assistant's tool calls and all their results. The oldest half of the turns (at least
    one) is dropped, with the notes of earlier compactions (they sit between the task and
    the first turn): a long run's notes never pile up. The last turn always stays.
    """
    starts = [i for i, role in enumerate(roles) if role == "assistant"]
    if len(starts) < 2:
        return None
    keep_from = starts[len(starts) // 2]
    after_task = next((i for i, role in enumerate(roles) if role != "system"), 0) + 1
    return min(after_task, starts[0]), keep_from


async def compact(journal: Journaling, step: int, error: ContextLengthError) -> bool:
    """Commit a compaction of the context; False if there is nothing left to drop."""
    state = journal.state
    span = droppable_range([m.role for m in state.messages])
    if span is None:
        return False
    start, end = span
    note = (f"[{end - start} earlier messages of this conversation were left out to fit "
            "the model's context window; they are kept in the run's journal.]")
    await journal.commit([journal.event(EventType.DECISION, step, {
        "decision": "compact",
        "options": ["drop_oldest_turns", "fail"],
        "chosen": "drop_oldest_turns",
        "reason": error.message,
        "drop": [start, end],
        "message": {"role": "user", "content": note},
    })])
    return True
