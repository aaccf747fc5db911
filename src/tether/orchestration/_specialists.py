"""The standard specialists: narrow agents, each with one kind of job.

Their real tools (memory recall, the code sandbox, guarded HTTP) come from other
packages; pass them in. Without them each specialist gets a stand-in tool that says
plainly that the real one is not wired, so a team runs end to end in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel

from ..runtime import Agent, Budget
from ..tools import Tool, tool


def _stand_in(name: str, what: str) -> Tool:
    def stand_in(request: str) -> str:
        return f"[{name} is a stand-in: {what} is not wired in this deployment] {request}"

    return tool(name=name, inline=True, idempotent=True,
                description=f"Stand-in for {what}.")(stand_in)


def _specialist(
    name: str, instructions: str, model: Any, tools: Sequence[Tool | Callable[..., Any]],
    budget: Budget | None,
) -> Agent:
    return Agent(name=name, instructions=instructions, model=model, tools=list(tools),
                 budget=budget or Budget(max_steps=8))


def retriever(model: Any, *, tools: Sequence[Tool | Callable[..., Any]] = (),
              budget: Budget | None = None, name: str = "retriever") -> Agent:
    """Finds facts: searches memory or documents and answers with what it found and
    where (never invents). Default tool: a stand-in ``search``."""
    return _specialist(name, "You retrieve facts. Search, then answer with the facts "
                       "you found and their sources; say so when nothing was found.",
                       model, tools or [_stand_in("search", "memory recall")], budget)


def coder(model: Any, *, tools: Sequence[Tool | Callable[..., Any]] = (),
          budget: Budget | None = None, name: str = "coder") -> Agent:
    """Writes and runs code for one computation. Default tool: a stand-in
    ``run_code`` (the sandbox)."""
    return _specialist(name, "You write and run code for one computation and answer "
                       "with its result.", model,
                       tools or [_stand_in("run_code", "the code sandbox")], budget)


def api_caller(model: Any, *, tools: Sequence[Tool | Callable[..., Any]] = (),
               budget: Budget | None = None, name: str = "api_caller") -> Agent:
    """Calls one external API and reports the response. Default tool: a stand-in
    ``http_request`` (guarded HTTP)."""
    return _specialist(name, "You call one external API as asked and answer with the "
                       "relevant part of its response.", model,
                       tools or [_stand_in("http_request", "guarded HTTP")], budget)


def formatter(model: Any, schema: type[BaseModel], *, budget: Budget | None = None,
              name: str = "formatter") -> Agent:
    """Produces the final output as JSON validated against ``schema``. Delegate to it
    with ``Brief(output_schema=schema, repairs=N)`` (or ``as_tool(..., output=schema,
    repairs=N)``): an answer that does not validate is handed back, with the
    validation errors, to a repair run."""
    return _specialist(name, f"You format the given material as one JSON object that "
                       f"validates against the {schema.__name__} schema. Answer with "
                       "the JSON only.", model, (), budget or Budget(max_steps=2))
