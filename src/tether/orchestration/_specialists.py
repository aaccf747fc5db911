"""The standard specialists: narrow agents, each with one kind of job and its real tools.

- ``retriever``: ``recall`` over a :class:`~tether.memory.SQLiteMemoryStore` (long-term
  memory, plus the documents the user registers, split into passages);
- ``coder``: ``run_python`` in a bubblewrap :class:`~tether.sandbox.Sandbox`;
- ``api_caller``: ``http_request`` through a :class:`~tether.net.GuardedHttp` held to
  the hosts the user allows;
- ``formatter``: no tools; its answer is JSON for a pydantic model (held to the schema
  by providers that support it, validated and repaired by the delegation).

``tools=[...]`` replaces a specialist's tools (a test double, or your own tool).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from ..core import UsageError
from ..memory import Namespace, SQLiteMemoryStore, memory_tools
from ..models import ModelSettings
from ..net import GuardedHttp, HttpPolicy, http_tool
from ..runtime import Agent, Budget
from ..sandbox import Sandbox, python_tool
from ..tools import Tool

#: Longest passage (in characters) a registered document is split into.
PASSAGE_CHARS = 1200

_ToolLike = Tool | Callable[..., Any]


def _specialist(
    name: str, instructions: str, model: Any, tools: Sequence[_ToolLike],
    budget: Budget | None, settings: ModelSettings | None = None,
) -> Agent:
    return Agent(name=name, instructions=instructions, model=model, tools=list(tools),
                 budget=budget or Budget(max_steps=8),
                 settings=settings or ModelSettings())


def passages(text: str, *, limit: int = PASSAGE_CHARS) -> list[str]:
    """``text`` split at blank lines into passages of at most ``limit`` characters
    (a longer paragraph is cut at sentence ends, else hard)."""
    out: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        while len(paragraph) > limit:
            cut = paragraph.rfind(". ", 0, limit)
            cut = cut + 1 if cut > 0 else limit
            out.append(paragraph[:cut].strip())
            paragraph = paragraph[cut:].strip()
        if paragraph:
            out.append(paragraph)
    return out


def register_documents(
    memory: SQLiteMemoryStore, documents: Mapping[str, str], *, namespace: Namespace,
) -> int:
    """Store each document's passages in ``memory`` as ``document`` memories, each
    prefixed with its source name (``"notes/alpha.md: ..."``) so an answer can cite it.

    Registering the same documents again adds nothing (memories are deduplicated); a
    passage whose text changed is stored beside the old one under the same key, and
    supersedes it.

    Returns:
        How many passages were new or changed.
    """
    written = 0
    for source, text in documents.items():
        for i, passage in enumerate(passages(text)):
            item = memory.prepare(f"{source}: {passage}", namespace=namespace,
                                  key=f"doc:{source}#{i}", kind="document",
                                  metadata={"source": source, "passage": i})
            if memory.write(item).action != "duplicate":
                written += 1
    return written


def retriever(
    model: Any, *, memory: SQLiteMemoryStore | None = None,
    namespace: Namespace | None = None, documents: Mapping[str, str] | None = None,
    k: int = 5, tools: Sequence[_ToolLike] = (), budget: Budget | None = None,
    name: str = "retriever",
) -> Agent:
    """Finds facts: searches long-term memory and the registered documents, and answers
    with what it found and where (never invents).

    Args:
        model: Its model.
        memory: The store it searches (its ``recall`` tool); required unless ``tools``.
        namespace: Where its documents live and what it searches (default:
            ``Namespace(agent=name)``).
        documents: ``{source: text}`` to register now (see :func:`register_documents`).
        k: Most passages one search returns.
        tools: Replaces the ``recall`` tool (a test double, or your own search).
        budget: Its limits (default 8 steps).
        name: Its name.

    Raises:
        UsageError: neither ``memory`` nor ``tools`` was given, or ``documents``
            without ``memory``.
    """
    if memory is None and (not tools or documents):
        raise UsageError(
            "the retriever needs a memory store to search"
            + (" and to register documents in" if documents else ""),
            hint="retriever(model, memory=SQLiteMemoryStore(path), documents={...})",
        )
    scope = namespace or Namespace(agent=name)
    if memory is not None and not tools:
        if documents:
            register_documents(memory, documents, namespace=scope)
        tools = [t for t in memory_tools(memory, scope, scope=scope, k=k)
                 if t.name == "recall"]
    return _specialist(name, "You retrieve facts. Search with recall, then answer with "
                       "the facts you found and their sources; say so when nothing was "
                       "found. Never invent a fact.", model, tools, budget)


def coder(
    model: Any, *, sandbox: Sandbox | None = None, tools: Sequence[_ToolLike] = (),
    budget: Budget | None = None, name: str = "coder",
) -> Agent:
    """Writes and runs Python for one computation, in a bubblewrap sandbox (no network,
    fresh directory, resource limits), and answers with its result.

    Args:
        model: Its model.
        sandbox: A :class:`~tether.sandbox.Sandbox` (default: a new one with the default
            configuration, started on first use; ``SandboxUnavailableError`` then if
            bubblewrap is missing).
        tools: Replaces ``run_python`` (a test double, or your own runner).
        budget: Its limits (default 8 steps).
        name: Its name.
    """
    if not tools:
        tools = [python_tool(sandbox if sandbox is not None else Sandbox())]
    return _specialist(name, "You compute. Write one short Python program that prints "
                       "the result, run it with run_python, then answer with the "
                       "printed result.", model, tools, budget)


def api_caller(
    model: Any, *, allowed_hosts: Iterable[str] | None = None, http: GuardedHttp | None = None,
    tools: Sequence[_ToolLike] = (), budget: Budget | None = None,
    name: str = "api_caller",
) -> Agent:
    """Calls one external HTTP API as asked, through a guarded client (only the hosts
    you allow; private, loopback and metadata addresses refused unless listed), and
    reports the relevant part of the response.

    Args:
        model: Its model.
        allowed_hosts: The hosts it may call (names, IP literals, ``*.example.com``);
            a client with ``HttpPolicy(allowed_hosts=...)`` and GET/HEAD only.
        http: A :class:`~tether.net.GuardedHttp` of your own instead (its policy rules).
        tools: Replaces ``http_request`` (a test double, or your own client).
        budget: Its limits (default 8 steps).
        name: Its name.

    Raises:
        UsageError: none of ``allowed_hosts``, ``http`` or ``tools`` was given (an API
            caller without an allow-list is not built).
    """
    if not tools:
        if http is None:
            if allowed_hosts is None:
                raise UsageError(
                    "the api_caller needs the hosts it may call",
                    hint='api_caller(model, allowed_hosts=["api.example.com"]), or '
                         "http=GuardedHttp(HttpPolicy(...))",
                )
            http = GuardedHttp(HttpPolicy(allowed_hosts=frozenset(allowed_hosts)))
        tools = [http_tool(http)]
    return _specialist(name, "You call one HTTP API. Send the request with "
                       "http_request, then answer with the relevant part of the "
                       "response.", model, tools, budget)


def formatter(model: Any, schema: type[BaseModel], *, budget: Budget | None = None,
              name: str = "formatter") -> Agent:
    """Produces the final output as JSON validated against ``schema``.

    Its model is asked for ``schema`` (``ModelSettings.output_schema``: providers that
    support structured output, and the local model's grammar, hold it to the schema).
    Delegate to it with ``Brief(output_schema=schema, repairs=N)`` (or
    ``as_tool(..., output=schema, repairs=N)``): an answer that does not validate is
    handed back, with the validation errors, to a repair run.
    """
    return _specialist(name, f"You format the given material as one JSON object that "
                       f"validates against the {schema.__name__} schema. Answer with "
                       "the JSON only.", model, (), budget or Budget(max_steps=2),
                       ModelSettings(output_schema=schema.model_json_schema()))
