"""Load a run and its sub-runs (child runs, recursively) from a store."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core import Event, visible
from ..store import RunSummary, Store

#: Most sub-runs listed per parent (``Store.runs`` needs a limit).
MAX_SUBRUNS = 10_000


@dataclass(slots=True, kw_only=True)
class RunTree:
    """A run's summary and journal, with its sub-runs' trees, oldest first."""

    summary: RunSummary
    events: list[Event]
    children: list[RunTree] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        """The id of the run at this tree's root (its summary's)."""
        return self.summary.run_id

    def walk(self) -> list[RunTree]:
        """This run and every descendant, depth first."""
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found


async def read_events(store: Store, run_id: str, *, after_seq: int = 0) -> list[Event]:
    """A run's events as readers show them: redacted, without their sealed originals
    (every view and export reads the journal through here)."""
    return [visible(e) for e in await store.read(run_id, after_seq=after_seq)]


async def load_run_tree(
    store: Store, run_id: str, *, subruns: bool = True, max_depth: int = 16
) -> RunTree:
    """Read ``run_id`` (``RunNotFoundError`` if unknown) and, unless ``subruns`` is
    false, every run whose ``parent_run_id`` leads back to it (each run once: parent
    links that form a cycle do not repeat runs)."""
    return await _load(store, run_id, subruns=subruns, max_depth=max_depth, seen=set())


async def _load(store: Store, run_id: str, *, subruns: bool, max_depth: int,
                seen: set[str]) -> RunTree:
    seen.add(run_id)
    summary = await store.run(run_id)
    tree = RunTree(summary=summary, events=await read_events(store, run_id))
    if subruns and max_depth > 0:
        children = await store.runs(parent_run_id=run_id, limit=MAX_SUBRUNS)
        for child in sorted(children, key=lambda r: (r.created_at, r.run_id)):
            if child.run_id not in seen:
                tree.children.append(await _load(store, child.run_id, subruns=True,
                                                 max_depth=max_depth - 1, seen=seen))
    return tree


async def root_run_id(store: Store, run_id: str, *, max_depth: int = 16) -> str:
    """The top-level ancestor of ``run_id`` (the run itself if it has no parent)."""
    current = await store.run(run_id)
    for _ in range(max_depth):
        if current.parent_run_id is None:
            break
        current = await store.run(current.parent_run_id)
    return current.run_id
