"""A synthetic long history: tool calls with results of very different sizes."""

from __future__ import annotations

import random

from tether.core import Message, ToolCall


def synthetic_history(steps: int, seed: int = 1) -> list[Message]:
    """``steps`` turns: mostly a tool call and its results (one to three calls, some
    results of 20,000 characters), sometimes a user message or a plain answer."""
    rng = random.Random(seed)
    out: list[Message] = []
    for step in range(steps):
        roll = rng.random()
        if roll < 0.05:
            out.append(Message.user(f"User says at step {step}: " + "please go on. " * 3))
            continue
        if roll < 0.1:
            out.append(Message.assistant(f"Thinking about step {step}. " * rng.randint(1, 40)))
            continue
        calls = tuple(ToolCall.of("read_log", call_id=f"c{step}_{j}", page=step, part=j)
                      for j in range(rng.randint(1, 3)))
        out.append(Message.assistant(None, calls))
        for call in calls:
            size = rng.choice([40, 300, 1500, 6000, 20000])
            body = (f"log {call.id}: line ünïcode {step} " * (size // 25 + 1))[:size]
            out.append(Message.tool(call, body))
    return out
