"""The agent-facing memory tools, bound to a store and a namespace, and the helper
that moves large tool results into long-term memory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from ..core import Message
from ..tools import Tool, ToolContext, tool
from ._sqlite import SQLiteMemoryStore
from ._types import Hit, Namespace, Provenance, WriteOutcome

#: Resolves a handle that is not a memory's (e.g. ``"evt:RUN:SEQ"`` of a masked turn)
#: to its full text, or None.
Resolver = Callable[[str], Awaitable[str | None]]


def _provenance(ctx: ToolContext | None) -> Provenance:
    return Provenance(run_id=ctx.run_id, step=ctx.step) if ctx is not None else Provenance()


#: Writes a fact (``text``, ``key``) for the call ``ctx``; the runtime journals it.
Writer = Callable[[str, "str | None", ToolContext], Awaitable[WriteOutcome]]
#: Told what a recall found (query, scope, hits, call), e.g. to journal it.
RecallHook = Callable[[str, Namespace, "list[Hit]", ToolContext], Awaitable[None]]
#: Forgets a memory by handle for the call ``ctx``; True if it was current.
Forgetter = Callable[[str, ToolContext], Awaitable[bool]]


def memory_tools(
    store: SQLiteMemoryStore,
    namespace: Namespace,
    *,
    scope: Namespace | None = None,
    resolve: Resolver | None = None,
    k: int = 5,
    write: Writer | None = None,
    on_recall: RecallHook | None = None,
    forget: Forgetter | None = None,
) -> list[Tool]:
    """``remember``, ``recall``, ``expand`` and ``forget``, bound to ``store``.

    ``expand`` and ``forget`` only reach memories ``scope`` sees: a handle from another
    user or thread gives nothing.

    Args:
        store: The long-term store.
        namespace: Where ``remember`` writes.
        scope: What ``recall`` sees; defaults to ``namespace`` without its run and
            thread, so an agent recalls what it learnt for this user in other runs.
        resolve: Resolves handles that are not memory handles (masked turns).
        k: Most memories ``recall`` returns.
        write: How the runtime journals a ``remember`` (default: straight to ``store``).
        on_recall: Told what each ``recall`` found, e.g. to journal it (default: nobody).
        forget: How the runtime journals a ``forget`` (default: straight to ``store``).
    """
    seen = scope or Namespace(agent=namespace.agent, user=namespace.user)

    async def store_write(text: str, key: str | None, ctx: ToolContext) -> WriteOutcome:
        return await store.remember(text, namespace=namespace, key=key,
                                    provenance=_provenance(ctx))

    async def store_forget(handle: str, ctx: ToolContext) -> bool:
        return await store.forget(handle)

    writer = write or store_write
    forgetter = forget or store_forget

    @tool(name="remember", idempotent=True)
    async def remember(text: str, ctx: ToolContext, key: str | None = None) -> str:
        """Store a fact in long-term memory. Storing a known fact again adds nothing; a
        fact with the same key replaces the older one (which stays in history).

        Args:
            text: The fact, as one self-contained sentence.
            key: What the fact is about (e.g. "user.timezone"); a newer fact with the
                same key supersedes the old one.
            ctx: The call's context (not shown to the model).
        """
        outcome = await writer(text, key, ctx)
        extra = f"; it supersedes {', '.join(outcome.superseded)}" if outcome.superseded else ""
        return f"{outcome.action}: {outcome.memory.handle}{extra}"

    @tool(name="recall", idempotent=True)
    async def recall(query: str, ctx: ToolContext) -> str:
        """Search long-term memory; answers "nothing relevant" when nothing matches.

        Args:
            query: What to look for, in words.
            ctx: The call's context (not shown to the model).
        """
        hits = await store.search(query, scope=seen, k=k)
        if on_recall is not None:
            await on_recall(query, seen, hits, ctx)
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
        if memory is not None and seen.sees(memory.namespace):
            return memory.text
        if resolve is not None:
            text = await resolve(handle)
            if text is not None:
                return text
        return f"no content for handle {handle!r}"

    @tool(name="forget", idempotent=True)
    async def forget_(handle: str, ctx: ToolContext) -> str:
        """Mark a memory as no longer true; it stays in history.

        Args:
            handle: The memory's handle.
            ctx: The call's context (not shown to the model).
        """
        memory = await store.get(handle)
        if memory is None or not seen.sees(memory.namespace):
            return f"{handle} is not a current memory"
        done = await forgetter(handle, ctx)
        return f"forgot {handle}" if done else f"{handle} is not a current memory"

    return [remember, recall, expand, forget_]


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


