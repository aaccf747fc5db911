"""Exact prompts, rebuilt from the ``model.request`` chain.

Each ``model.request`` journals only what is new: ``prefix`` is how many messages at
the start of this request are the first messages of the previous request, and ``new``
the messages that follow. A message that an earlier event already holds (a model
response, a tool outcome, the note of a context compaction) appears in ``new`` as a
reference ``{"event": seq}``. The prompt of request ``n`` is therefore
``prompt[n-1][:prefix] + resolve(new)``; the first request has ``prefix == 0``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from ..core import (
    DecisionPayload,
    Event,
    EventType,
    ModelRequestPayload,
    ModelResponsePayload,
    ToolErrorPayload,
    ToolResultPayload,
)


def message_dict(event: Event) -> dict[str, Any] | None:
    """The conversation message an event adds, in the journal's message shape."""
    p = event.data
    if isinstance(p, DecisionPayload):
        return p.message
    if isinstance(p, ModelResponsePayload):
        return p.message
    if isinstance(p, ToolResultPayload | ToolErrorPayload):
        return {"role": "tool", "content": p.content, "tool_call_id": p.call_id,
                "name": p.tool}
    return None


#: Event types whose message later requests may refer to.
HOLDERS = frozenset({EventType.MODEL_RESPONSE, EventType.TOOL_RESULT, EventType.TOOL_ERROR,
                      EventType.DECISION})


def _is_ref(message: Any) -> bool:
    return isinstance(message, dict) and len(message) == 1 and "event" in message


def resolve(request: Event, held: Mapping[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """A ``model.request``'s new messages, references replaced by the messages in
    ``held`` (message dicts by event seq)."""
    resolved = []
    data = request.data
    for m in data.new if isinstance(data, ModelRequestPayload) else []:
        if _is_ref(m):
            target = held.get(int(m["event"]))
            resolved.append(target if target is not None
                            else {"role": "unknown", "content": f"<event {m['event']}>"})
        else:
            resolved.append(m)
    return resolved


def new_messages(events: Sequence[Event]) -> dict[int, list[dict[str, Any]]]:
    """The new messages of every ``model.request``, references resolved, by ``seq``."""
    held: dict[int, dict[str, Any]] = {}
    found: dict[int, list[dict[str, Any]]] = {}
    for e in events:
        if e.type == EventType.MODEL_REQUEST:
            found[e.seq] = resolve(e, held)
        elif e.type in HOLDERS:
            message = message_dict(e)
            if message is not None:
                held[e.seq] = message
    return found


def prompts(events: Sequence[Event]) -> dict[int, list[dict[str, Any]]]:
    """The full message list of every ``model.request`` of one run, by event ``seq``.

    Messages are in the journal's shape (``role``, ``content``, ``tool_calls``,
    ``tool_call_id``, ``name``; defaults omitted). Lists share their message dicts
    with the events: copy before changing them.
    """
    found: dict[int, list[dict[str, Any]]] = {}
    previous: list[dict[str, Any]] = []
    news = new_messages(events)
    for e in events:
        if e.type != EventType.MODEL_REQUEST:
            continue
        prefix = cast(ModelRequestPayload, e.data).prefix
        current = previous[:prefix] + news[e.seq]
        found[e.seq] = current
        previous = current
    return found
