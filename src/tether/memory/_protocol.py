"""The ``MemoryStore`` protocol: what a long-term store offers the runtime and tools.

:class:`~tether.memory.SQLiteMemoryStore` implements it; a Postgres + pgvector store
will too (same tables, ``tsvector`` for BM25, ``vector``/``bit`` columns for vectors).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from ._types import Hit, Memory, Namespace, Provenance, WriteOutcome


@runtime_checkable
class MemoryStore(Protocol):
    """Write, search, fetch and retire memories."""

    async def remember(
        self,
        text: str,
        *,
        namespace: Namespace,
        key: str | None = None,
        kind: str = "fact",
        metadata: Mapping[str, Any] | None = None,
        provenance: Provenance | None = None,
    ) -> WriteOutcome:
        """Store ``text`` unless it is a duplicate; supersede older memories of the
        same subject."""
        ...

    async def search(
        self,
        query: str,
        *,
        scope: Namespace,
        k: int = 10,
        filters: Mapping[str, Any] | None = None,
        kinds: Sequence[str] | None = None,
        history: bool = False,
        min_similarity: float | None = None,
    ) -> list[Hit]:
        """The memories of ``scope`` relevant to ``query``, best first (maybe none)."""
        ...

    async def get(self, handle: str) -> Memory | None:
        """The memory with ``handle``, current or not."""
        ...

    async def forget(self, handle: str) -> bool:
        """Mark the memory superseded; False if it was not current."""
        ...
