"""Fusing ranked lists, and keyword coverage: pure functions of the search."""

from __future__ import annotations

from ._text import content_tokens


def fuse(vector_ids: list[int], keyword_ids: list[int], k: int = 60
         ) -> dict[int, tuple[float, int | None, int | None]]:
    """Reciprocal rank fusion: ``sum(1 / (k + rank))`` over the lists an id is in.

    Returns ``{id: (score, vector_rank, keyword_rank)}`` ordered best first (ties by
    id, so the order is deterministic).
    """
    ranks: dict[int, list[int | None]] = {}
    for rank, mid in enumerate(vector_ids, 1):
        ranks.setdefault(mid, [None, None])[0] = rank
    for rank, mid in enumerate(keyword_ids, 1):
        ranks.setdefault(mid, [None, None])[1] = rank
    scored = {
        mid: (sum(1.0 / (k + r) for r in pair if r is not None), pair[0], pair[1])
        for mid, pair in ranks.items()
    }
    return dict(sorted(scored.items(), key=lambda kv: (-kv[1][0], kv[0])))


def keyword_coverage(terms: list[str], text: str) -> float:
    """The share of the query's terms that ``text`` contains as words."""
    if not terms:
        return 0.0
    words = content_tokens(text)
    words |= {part for w in words for part in w.replace("-", " ").replace(".", " ").split()}
    return sum(1 for t in terms if t in words) / len(terms)
