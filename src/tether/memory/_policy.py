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
      ``key``; or, when neither has a key, cosine ≥ ``supersede_similarity`` and the
      two texts open with the same words for at least ``supersede_opening`` of the
      shorter one: only the ending (the value) changed, as in "the API key rotates
      every 30 days" → "... every 90 days". Records that differ early ("invoice
      INV-4517 is paid", "invoice INV-6789 is paid") are different subjects.

    A search returns a memory only if its cosine similarity to the query is at least
    ``min_similarity``, or the memory holds every content word of the query
    (``keyword_coverage``); otherwise the answer is "nothing relevant".
    """

    duplicate_similarity: float = 0.8
    duplicate_overlap: float = 0.8
    supersede_similarity: float = 0.85
    supersede_opening: float = 0.5
    min_similarity: float = 0.3
    keyword_coverage: float = 1.0
    #: Candidates taken from the binary prefilter per result asked for.
    prefilter_factor: int = 20
    #: Minimum candidates from the binary prefilter.
    prefilter_min: int = 400
    #: Query terms found in more than this share of the memories are left out of the
    #: BM25 query (they cost the most and rank the least).
    keyword_max_share: float = 0.02
    #: Reciprocal rank fusion constant.
    rrf_k: int = 60
