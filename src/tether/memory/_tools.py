"""The agent-facing memory tools, bound to a store and a namespace, and the helper
that moves large tool results into long-term memory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from ..core import Message
from ..tools import Tool, ToolContext, tool
from ._sqlite import SQLiteMemoryStore
from ._types import Namespace, Provenance

#: Resolves a handle that is not a memory's (e.g. ``"evt:RUN:SEQ"`` of a masked turn)
#: to its full text, or None.
Resolver = Callable[[str], Awaitable[str | None]]


def _provenance(ctx: ToolContext | None) -> Provenance:
    return Provenance(run_id=ctx.run_id, step=ctx.step) if ctx is not None else Provenance()


def memory_tools(
    store: SQLiteMemoryStore,
    namespace: Namespace,
    *,
    scope: Namespace | None = None,
    resolve: Resolver | None = None,
    k: int = 5,
) -> list[Tool]:
    """``remember``, ``recall``, ``expand`` and ``forget``, bound to ``store``.

    Args:
        store: The long-term store.
        namespace: Where ``remember`` writes.
        scope: What ``recall`` sees; defaults to ``namespace`` without its run and
            thread, so an agent recalls what it learnt for this user in other runs.
        resolve: Resolves handles that are not memory handles (masked turns).
        k: Most memories ``recall`` returns.
    """
    seen = scope or Namespace(agent=namespace.agent, user=namespace.user)

    @tool(name="remember", idempotent=True)
    async def remember(text: str, ctx: ToolContext, key: str | None = None) -> str:
        """Store a fact in long-term memory. Storing a known fact again adds nothing; a
        fact with the same key replaces the older one (which stays in history).

        Args:
            text: The fact, as one self-contained sentence.
            key: What the fact is about (e.g. "user.timezone"); a newer fact with the
                same key supersedes the old one.
        """
        outcome = await store.remember(text, namespace=namespace, key=key,
                                       provenance=_provenance(ctx))
        extra = f"; it supersedes {', '.join(outcome.superseded)}" if outcome.superseded else ""
        return f"{outcome.action}: {outcome.memory.handle}{extra}"

    @tool(name="recall", idempotent=True)
    async def recall(query: str) -> str:
        """Search long-term memory; answers "nothing relevant" when nothing matches.

        Args:
            query: What to look for, in words.
        """
        hits = await store.search(query, scope=seen, k=k)
        if not hits:
            return "nothing relevant"
        return "\n".join(f"[{h.memory.handle}] {h.memory.text}" for h in hits)

    @tool(name="expand", idempotent=True)
    async def expand(handle: str) -> str:
        """The full text behind a handle (a memory, or a masked earlier output).

        Args:
            handle: The handle shown in the preview.
        """
        memory = await store.get(handle)
        if memory is not None:
            return memory.text
        if resolve is not None:
            text = await resolve(handle)
            if text is not None:
                return text
        return f"no content for handle {handle!r}"

    @tool(name="forget", idempotent=True)
    async def forget(handle: str) -> str:
        """Mark a memory as no longer true; it stays in history.

        Args:
            handle: The memory's handle.
        """
        done = await store.forget(handle)
        return f"forgot {handle}" if done else f"{handle} is not a current memory"

    return [remember, recall, expand, forget]


async def offload_large_results(
    store: SQLiteMemoryStore,
    messages: Sequence[Message],
    *,
    namespace: Namespace,
    max_tokens: int,
    count: Callable[[str], int],
    provenance: Provenance | None = None,
) -> dict[str, str]:
    """Store each tool result above ``max_tokens`` as an ``artifact`` memory.

    Returns ``{tool_call_id: handle}`` for :meth:`ContextBuilder.build`'s ``handles``;
    ``expand(handle)`` then gives the whole result back.
    """
    handles: dict[str, str] = {}
    for m in messages:
        if m.role == "tool" and m.tool_call_id and m.content and count(m.content) > max_tokens:
            outcome = await store.remember(
                m.content, namespace=namespace, kind="artifact",
                metadata={"tool": m.name or "", "call_id": m.tool_call_id},
                provenance=provenance)
            handles[m.tool_call_id] = outcome.memory.handle
    return handles


