"""Plain data of the memory layer: namespaces, memories, provenance, hits, write outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

WriteAction = Literal["added", "duplicate", "superseded"]

#: The namespace fields, in order. A memory belongs to one value of each (or none).
NAMESPACE_FIELDS = ("agent", "user", "thread", "run")


@dataclass(frozen=True, slots=True, kw_only=True)
class Namespace:
    """Where a memory lives, and (as a search scope) which memories a search sees.

    A memory's namespace records the agent, user, thread and run it belongs to (a
    field left ``None`` means "not tied to one"). Used as a scope, every field that is
    set must match the memory's field exactly, and fields left ``None`` match
    anything: ``Namespace(agent="a", user="u")`` sees all of user u's memories with
    agent a, whatever thread or run wrote them.
    """

    agent: str | None = None
    user: str | None = None
    thread: str | None = None
    run: str | None = None

    def sees(self, namespace: Namespace) -> bool:
        """Whether a memory of ``namespace`` is visible from this scope (every field this
        scope sets, the memory's namespace has too)."""
        return all(s is None or s == n for s, n in zip(self.values(), namespace.values(),
                                                          strict=True))

    def values(self) -> tuple[str | None, str | None, str | None, str | None]:
        """``(agent, user, thread, run)``, in the order of the store's columns; None
        for a field left unset."""
        return (self.agent, self.user, self.thread, self.run)

    def to_dict(self) -> dict[str, str]:
        """The fields that are set, by name (an unset field is left out, not None): the
        shape journaled as a recall's ``scope``."""
        return {k: v for k, v in zip(NAMESPACE_FIELDS, self.values(), strict=True) if v}


@dataclass(frozen=True, slots=True, kw_only=True)
class Provenance:
    """Where a memory came from in the journal: run, step and event sequence number."""

    run_id: str | None = None
    step: int | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Memory:
    """One stored memory.

    ``handle`` is the stable, public id an agent passes to ``expand`` and ``forget``.
    ``superseded_by`` holds the handle of the newer memory that replaced this one
    (or ``"forgotten"``); a memory with ``superseded_by`` set is history, not current.
    """

    handle: str
    text: str
    namespace: Namespace
    key: str | None = None
    kind: str = "fact"
    metadata: Mapping[str, Any] = field(default_factory=dict)
    provenance: Provenance = field(default_factory=Provenance)
    created_at: float = 0.0
    superseded_by: str | None = None
    superseded_at: float | None = None

    @property
    def current(self) -> bool:
        """Whether no later memory replaced this one and it was not forgotten
        (``superseded_by`` is None): searches see only current memories unless asked
        for ``history``."""
        return self.superseded_by is None


@dataclass(frozen=True, slots=True, kw_only=True)
class Hit:
    """A memory a search returned, with its fused score and what each signal said.

    ``similarity`` is the cosine similarity of the float vectors; ``keyword_rank`` and
    ``vector_rank`` are 1-based ranks in each list (``None``: not in that list).
    """

    memory: Memory
    score: float
    similarity: float
    keyword_rank: int | None = None
    vector_rank: int | None = None

    def to_payload(self) -> dict[str, Any]:
        """This hit in a ``memory.recall`` event: ``{"query", "scope", "hits": [...]}``."""
        return {"handle": self.memory.handle, "score": round(self.score, 6),
                "similarity": round(self.similarity, 6), "keyword_rank": self.keyword_rank,
                "vector_rank": self.vector_rank}


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteOutcome:
    """What a write did: ``added`` a memory, found a ``duplicate`` (nothing added; the
    existing memory is returned), or added one that ``superseded`` older ones."""

    action: WriteAction
    memory: Memory
    superseded: tuple[str, ...] = ()

    def to_payload(self) -> dict[str, Any]:
        """The ``memory.write`` event payload for this outcome."""
        m = self.memory
        return {
            "action": self.action,
            "handle": m.handle,
            "key": m.key,
            "kind": m.kind,
            "namespace": m.namespace.to_dict(),
            "superseded": list(self.superseded),
        }
