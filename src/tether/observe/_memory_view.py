"""One-line descriptions of the memory events (``tether trace``, ``show``, ``tail``):
the context built for a step (its parts and their tokens, what was masked, dropped and
recalled, the budget used), recalls, writes and working memory."""

from __future__ import annotations

import json
from typing import Any

from ..core import EventType

#: The memory events, described here.
MEMORY_EVENTS = frozenset({EventType.CONTEXT_BUILT, EventType.MEMORY_RECALL,
                           EventType.MEMORY_WRITE, EventType.MEMORY_WORKING})


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           default=str)


def _clip(value: Any, width: int) -> str:
    line = " ".join(_text(value).split())
    return line if len(line) <= width else line[: max(1, width - 1)] + "…"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def context_summary(p: dict[str, Any]) -> dict[str, Any]:
    """What a ``context.built`` payload says, in plain numbers: ``tokens``, ``budget``,
    ``share`` of the budget used, ``parts`` (name -> ``{"tokens", "messages"}``), ``turns``,
    ``masked`` and ``dropped`` turns, ``thread_messages``, the ``memories`` shown."""
    raw = p.get("recipe")
    recipe: dict[str, Any] = raw if isinstance(raw, dict) else {}
    tokens, budget = _int(p.get("tokens")), _int(p.get("budget"))
    drop, mask = _int(recipe.get("drop_cut")), _int(recipe.get("mask_cut"))
    parts = {}
    for part in p.get("parts") or ():
        if isinstance(part, dict):
            parts[_text(part.get("name"))] = {"tokens": _int(part.get("tokens")),
                                              "messages": _int(part.get("messages"))}
    memories = recipe.get("memories")
    return {
        "tokens": tokens, "budget": budget,
        "share": round(tokens / budget, 4) if budget else None,
        "parts": parts, "turns": _int(recipe.get("turns")),
        "masked": max(0, mask - drop), "dropped": drop,
        "thread_messages": _int(recipe.get("thread_messages")),
        "memories": [_text(m) for m in memories] if isinstance(memories, list) else [],
    }


def describe_context(p: dict[str, Any], width: int = 80) -> str:
    """``5,021/8,000 tok (63%): instructions 9, task 12, masked_turns 1,200/14 msg,
    ...; 40 turns: 16 masked, 8 dropped; 3 memories``."""
    s = context_summary(p)
    head = f"{s['tokens']:,}/{s['budget']:,} tok"
    if s["share"] is not None:
        head += f" ({s['share']:.0%})"
    parts = ", ".join(f"{name} {v['tokens']:,}" + (f"/{v['messages']} msg"
                                                   if v["messages"] > 1 else "")
                      for name, v in s["parts"].items())
    turns = f"{s['turns']} turn{'' if s['turns'] == 1 else 's'}"
    if s["masked"] or s["dropped"]:
        turns += f": {s['masked']} masked, {s['dropped']} dropped"
    if s["thread_messages"]:
        turns += f" ({s['thread_messages']} thread msg)"
    recalled = len(s["memories"])
    mems = f"{recalled} memor{'y' if recalled == 1 else 'ies'} shown" if recalled else \
        "no memories"
    return f"{head}: {parts}; {turns}; {mems}"


def _describe_recall(p: dict[str, Any], width: int) -> str:
    hits = [h for h in p.get("hits") or () if isinstance(h, dict)]
    by = " by the recall tool" if p.get("tool_call_id") else ""
    query = _clip(p.get("query", ""), 40)
    if not hits:
        return f"{query!r}{by} → nothing relevant"
    best = hits[0]
    sim = best.get("similarity")
    score = f"sim {sim:.2f}" if isinstance(sim, int | float) else "keyword"
    return (f"{query!r}{by} → {len(hits)} hit(s); best [{_text(best.get('handle'))}] "
            f"({score}): {_clip(best.get('text', ''), max(20, width - 60))}")


def _describe_write(p: dict[str, Any], width: int) -> str:
    action = _text(p.get("action"))
    text = f"{action} [{_text(p.get('handle'))}]"
    if p.get("key"):
        text += f" key={_clip(p['key'], 30)}"
    if isinstance(p.get("promoted"), dict):
        text += f" promoted from working memory {_clip(p['promoted'].get('key'), 30)!r}"
    elif p.get("call_id"):
        text += f" (result of {_text(p['call_id'])} moved out of the prompt)"
    if p.get("text"):
        text += f": {_clip(p['text'], max(20, width - len(text)))}"
    return text


def _describe_working(p: dict[str, Any], width: int) -> str:
    if p.get("step_end"):
        promoted = [f"{_clip(x.get('key'), 20)!r} → [{_text(x.get('handle'))}]"
                    for x in p.get("promoted") or () if isinstance(x, dict)]
        dropped = [_clip(k, 20) for k in p.get("dropped") or ()]
        text = "step end: " + (("promoted " + ", ".join(promoted)) if promoted
                               else "nothing promoted")
        if dropped:
            text += f"; dropped {len(dropped)}: " + ", ".join(repr(k) for k in dropped[:5])
        return _clip(text, width + 40)
    ops = [o for o in p.get("ops") or () if isinstance(o, dict)]
    puts = [repr(_clip(o.get("key"), 20)) for o in ops if o.get("op") == "put"]
    promotes = [repr(_clip(o.get("key"), 20)) for o in ops if o.get("op") == "promote"]
    text = f"{_text(p.get('tool'))} put {', '.join(puts[:6]) or 'nothing'}"
    if len(puts) > 6:
        text += f" and {len(puts) - 6} more"
    if promotes:
        text += f"; promote {', '.join(promotes[:6])}"
    return text


def describe_memory(kind: str, p: dict[str, Any], width: int = 80) -> str:
    """One line for a memory event (``kind`` in :data:`MEMORY_EVENTS`)."""
    if kind == EventType.CONTEXT_BUILT:
        return describe_context(p, width)
    if kind == EventType.MEMORY_RECALL:
        return _describe_recall(p, width)
    if kind == EventType.MEMORY_WRITE:
        return _describe_write(p, width)
    return _describe_working(p, width)
