"""The rules for duplicates, supersession and relevance, in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryPolicy:
    """Thresholds of the store; the defaults are tuned for all-MiniLM-L6-v2.

    Within one namespace, among current memories:

    * **exact duplicate**: same text after :func:`~tether.memory.normalise_text`
      (case, whitespace, Unicode form and trailing punctuation ignored);
    * **near duplicate**: cosine ≥ ``duplicate_similarity`` *and* the sets of content
      words (stopwords dropped; ``db-3``, ``1.5`` kept whole) have Jaccard ≥
      ``duplicate_overlap``. A changed number or name lowers the overlap, so
      "the server is db-3" and "the server is db-4" are never duplicates;
    * **same subject** (the newer memory supersedes the older): both have the same
      ``key``; or, when the new memory has no key, cosine ≥ ``supersede_similarity``
      and content-word Jaccard ≥ ``supersede_overlap`` (a restatement with some words
      changed).

    A search returns a memory only if its cosine similarity to the query is at least
    ``min_similarity``, or the memory holds every content word of the query
    (``keyword_coverage``); otherwise the answer is "nothing relevant".
    """

    duplicate_similarity: float = 0.8
    duplicate_overlap: float = 0.8
    supersede_similarity: float = 0.85
    supersede_overlap: float = 0.5
    min_similarity: float = 0.3
    keyword_coverage: float = 1.0
    #: Candidates taken from the binary prefilter per result asked for.
    prefilter_factor: int = 20
    #: Minimum candidates from the binary prefilter.
    prefilter_min: int = 200
    #: Reciprocal rank fusion constant.
    rrf_k: int = 60
