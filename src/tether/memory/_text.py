"""Text rules of the store: normalisation for exact duplicates, content tokens for
near-duplicates and keyword coverage, and a safe FTS5 query from any text."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_WORD = re.compile(r"[^\W_]+(?:[-.:/'][^\W_]+)*", re.UNICODE)
_FTS_TERM = re.compile(r"[^\W_]+", re.UNICODE)

STOPWORDS = frozenset(
    "a an and are as at be been but by can could did do does for from had has have how i "
    "if in into is it its me my of on or our she he so than that the their them then there "
    "these they this to us was we were what when where which who whom why will with would "
    "you your about after again all am any because before being between both during each "
    "few further here just more most no nor not now only other over own same should some "
    "such too under until up very".split()
)


def valid_text(text: str) -> str:
    r"""``text`` as valid Unicode: surrogate pairs joined, lone surrogates (which
    ``json.loads`` makes from ``"\\ud800"``) replaced by U+FFFD; SQLite stores UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def normalise_text(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed, trailing punctuation dropped."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split()).rstrip(" .!?;,")


def text_hash(text: str) -> bytes:
    """The exact-duplicate key: 128-bit BLAKE2b of :func:`normalise_text`."""
    return hashlib.blake2b(normalise_text(text).encode("utf-8", "surrogatepass"),
                           digest_size=16).digest()


def content_tokens(text: str) -> frozenset[str]:
    """Distinct words of ``text`` without stopwords; ``db-3`` and ``1.5`` stay whole."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return frozenset(w for w in _WORD.findall(folded) if w not in STOPWORDS)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a ∩ b| / |a ∪ b| (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def fts_terms(text: str, limit: int = 32) -> list[str]:
    """The distinct FTS5 terms of a query, stopwords dropped, in order of appearance."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    seen: dict[str, None] = {}
    for w in _FTS_TERM.findall(folded):
        if w not in STOPWORDS and w not in seen:
            seen[w] = None
    return list(seen)[:limit]


def fts_query(terms: list[str]) -> str | None:
    """An FTS5 MATCH expression: every term quoted (so no FTS syntax gets through), OR-ed."""
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def word_sequence(text: str) -> list[str]:
    """The words of ``text`` in order (case-folded, stopwords kept)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def shared_opening(a: str, b: str) -> float:
    """How much of the shorter text's words the two texts share from their start
    (1.0: one text opens with the whole other)."""
    wa, wb = word_sequence(a), word_sequence(b)
    shorter = min(len(wa), len(wb))
    if shorter == 0:
        return 0.0
    same = 0
    while same < shorter and wa[same] == wb[same]:
        same += 1
    return same / shorter
