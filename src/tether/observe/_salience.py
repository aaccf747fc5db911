"""Whether a tool result was used: its salient words, and its numbers and dates even
when the model reformatted them (``1234567`` as "1.23 million" or "1,234,567",
``2026-11-30`` as "November 30"). Deterministic and offline: regular expressions."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*")

_SCALES = {"thousand": 1e3, "k": 1e3, "million": 1e6, "mio": 1e6, "m": 1e6, "mn": 1e6,
           "billion": 1e9, "bn": 1e9, "b": 1e9, "trillion": 1e12, "tn": 1e12}
#: A number as people write it: 1234567, 1,234,567, 1 234 567, 1.23, 1.23 million, 12k.
_NUMBER = re.compile(
    r"(?<![\w.])(\d{1,3}(?:[, \u00a0\u202f]\d{3})+|\d+)(\.\d+)?"
    r"(?:\s?(thousand|million|billion|trillion|mio|mn|bn|tn|k|m|b)\b)?",
    re.IGNORECASE)
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december"]
_MONTH = "(" + "|".join(m[:3] + f"(?:{m[3:]})?" if len(m) > 3 else m for m in _MONTHS) + r")\.?"
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_MONTH_DAY = re.compile(_MONTH + r"\s+(\d{1,2})(?:st|nd|rd|th)?\b", re.IGNORECASE)
_DAY_MONTH = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)?(?:\s+of)?\s+" + _MONTH, re.IGNORECASE)
_SLASH_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{2,4})\b")


def tokens(text: str) -> list[str]:
    """Salient-candidate tokens of ``text``: words of 4+ characters, numbers of 2+
    digits, lowercased."""
    found = []
    for token in _TOKEN.findall(text):
        if len(token) >= 4 or (len(token) >= 2 and token.isdigit()):
            found.append(token.lower())
    return found


def _key(value: float) -> str:
    return f"{value:.6g}"


def numbers(text: str) -> Iterator[float]:
    """The numbers of 1,000 or more (or with decimals) in ``text``, as written
    (``1.23 million`` -> 1230000, ``1,234,567`` -> 1234567)."""
    for match in _NUMBER.finditer(text):
        whole, decimals, scale = match.groups()
        digits = re.sub(r"[^\d]", "", whole)
        if scale and scale.lower() in ("m", "b", "k") and not decimals and len(digits) > 3:
            continue  # "2000 m" is more likely metres than millions
        value = float(digits + (decimals or ""))
        if scale:
            value *= _SCALES[scale.lower()]
        if value >= 1000 or decimals:
            yield value


def numbers_written(text: str) -> set[str]:
    """Keys of the numbers in a model's text, for :func:`number_keys` to meet."""
    return {_key(v) for v in numbers(text)}


def number_keys(value: float) -> list[str]:
    """The keys a number from a tool result may be written as: itself, and rounded to
    2 to 6 significant digits ("1.2 million", "1.23 million", ...). Only numbers of
    1,000 or more: small ones are too common to tell anything."""
    if value < 1000:
        return []
    keys = [_key(value)]
    magnitude = math.floor(math.log10(value)) if value > 0 else 0
    for digits in range(2, 7):
        factor = 10 ** (magnitude - digits + 1)
        keys.append(_key(round(value / factor) * factor))
    return keys


def _month(name: str) -> int:
    return next(i + 1 for i, m in enumerate(_MONTHS) if m.startswith(name.lower()[:3]))


def dates_written(text: str) -> Iterator[tuple[int, int]]:
    """(month, day) of the dates in a model's text: ISO, "November 30", "30 Nov",
    "11/30/2026" (and "30/11/2026" when unambiguous)."""
    for _year, m, d in _ISO_DATE.findall(text):
        yield int(m), int(d)
    for name, day in _MONTH_DAY.findall(text):
        yield _month(name), int(day)
    for day, name in _DAY_MONTH.findall(text):
        yield _month(name), int(day)
    for a, b, _ in _SLASH_DATE.findall(text):
        first, second = int(a), int(b)
        if first <= 12:
            yield first, second
        if second <= 12:
            yield second, first


def date_key(token: str) -> tuple[int, int] | None:
    """(month, day) of an ISO date token (``2026-11-30``), else None."""
    match = _ISO_DATE.fullmatch(token)
    return (int(match.group(2)), int(match.group(3))) if match else None
