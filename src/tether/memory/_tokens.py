"""Counting tokens: the local model's real tokenizer when it is installed, otherwise a
calibrated estimate (its error against SmolLM2's tokenizer is measured by
``bench/memory.py`` and documented in docs/memory.md)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from ..core import Message

_WORDS = re.compile(r"[A-Za-z]+")
_PUNCT = re.compile(r"[!-/:-@\[-`{-~]+")
_NUMBERS = re.compile(r"[0-9]+")
#: Candidate random-looking runs (base64, keys, ids); they count as such when they
#: mix letters and digits (checked per run: no backtracking on hostile input).
_RUNS = re.compile(r"[A-Za-z0-9+/=_-]{12,}")
_A_DIGIT = re.compile(r"[0-9]")
_A_LETTER = re.compile(r"[A-Za-z]")
#: Whitespace runs that may hold a tab (or another blank): the blank-holding ones
#: count one per character other than newlines.
_BLANKS = re.compile(r"[ \t\r\v\f\n]{2,}|[\t\r\v\f]")
_SPACES = re.compile(r" {2,}")
#: Characters a byte-level BPE splits finely: combining marks, Hangul (3 UTF-8 bytes,
#: 2-3 tokens each), other 3-byte characters (CJK: about 2), 4-byte ones (emoji: ~3).
_MARKS = re.compile("[\u0300-\u036f\u0483-\u0489\u0591-\u05bd\u064b-\u065f"
                    "\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
_WIDE = re.compile("[\u0800-\uffff]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")

#: Tokens a chat template adds around each message (SmolLM2: ``<|im_start|>role\n`` ...
#: ``<|im_end|>\n``).
MESSAGE_OVERHEAD = 5


@runtime_checkable
class TokenCounter(Protocol):
    """Counts the tokens of a text for one model family."""

    @property
    def name(self) -> str:
        """Which counter this is, journaled with each built context (``counter``), so a
        reader knows whether a count was exact or estimated."""

    def count(self, text: str) -> int:
        """Tokens of ``text``."""
        ...


class EstimateTokenCounter:
    """An estimate from the text's shape, no tokenizer needed: an upper bound on
    SmolLM2's byte-level BPE for ordinary and hostile text alike.

    Each ASCII word counts one, plus one per ``letters_per_token`` letters beyond six
    a word on average (rare long words split); each digit one and each number one more
    (the space before it); each run of ASCII punctuation one, plus three quarters of a
    token per further character; newlines one each. Random-looking runs (letters and digits
    mixed, 12 characters or more: base64, keys, ids) count ``mixed_per_char`` a
    character instead. Whitespace other than one space before a word counts too: a
    run holding a tab (or another blank) one per character, a run of spaces one per
    eight. Other characters count by class: one per 2-byte character (Latin accents,
    Cyrillic, Arabic...), two per combining mark, two per other 3-byte character
    (CJK), three per Hangul syllable or jamo, four per 4-byte one (emoji). ``safety``
    scales the sum up. Its error against SmolLM2's tokenizer, on ordinary and on
    hostile text (base64, zalgo, Korean, tabs...), is measured by ``bench/memory.py``
    (``token_estimate_*``) and documented in docs/memory.md. All counting is done by
    C-level string and regex calls.
    """

    name = "estimate"

    def __init__(self, *, letters_per_token: float = 3.0, mixed_per_char: float = 0.9,
                 safety: float = 1.1) -> None:
        self.letters_per_token = letters_per_token
        self.mixed_per_char = mixed_per_char
        self.safety = safety

    def count(self, text: str) -> int:
        """Estimated tokens of ``text``, rounded up (0 for an empty text); lone
        surrogates are counted, never raised on."""
        if not text:
            return 0
        extra = 0.0
        if text.isascii():
            other = 0.0
        else:
            wide = len(_WIDE.findall(text))
            astral = len(_ASTRAL.findall(text))
            two = len(text) - len(text.encode("ascii", "ignore")) - wide - astral
            other = (two + len(_MARKS.findall(text)) + 2 * wide
                     + len(_HANGUL.findall(text)) + 4 * astral)
        if "\t" in text or "\r" in text or "\v" in text or "\f" in text:
            extra += sum(len(b) - b.count("\n") for b in _BLANKS.findall(text)
                         if b.strip(" \n"))
        if "  " in text:
            extra += sum(len(b) for b in _SPACES.findall(text)) / 8
        numbers = _NUMBERS.findall(text)
        if numbers and len(text) >= 12:  # no digit, no random-looking run
            mixed = [r for r in _RUNS.findall(text) if _A_DIGIT.search(r)
                     and _A_LETTER.search(r)]
            if mixed:
                extra += self.mixed_per_char * sum(map(len, mixed))
                found = set(mixed)
                text = _RUNS.sub(lambda m: " " if m.group() in found else m.group(), text)
                numbers = _NUMBERS.findall(text)
        words = _WORDS.findall(text)
        letters = sum(map(len, words))
        puncts = _PUNCT.findall(text)
        punct, punct_runs = sum(map(len, puncts)), len(puncts)
        total = (len(words) + max(0.0, letters - 6 * len(words)) / self.letters_per_token
                 + sum(map(len, numbers)) + len(numbers)
                 + punct_runs + (punct - punct_runs) * 0.75
                 + other + extra + text.count("\n"))
        return math.ceil(total * self.safety)


class LlamaTokenCounter:
    """Real counts from a GGUF model's tokenizer (only the vocabulary is loaded).

    Args:
        model_path: The GGUF file; defaults to the embedded local model (SmolLM2).
    """

    def __init__(self, model_path: str | os.PathLike[str] | None = None) -> None:
        from llama_cpp import Llama

        from ..models import default_local_model_path

        path = str(model_path or default_local_model_path())
        self._llama: Any = Llama(model_path=path, vocab_only=True, verbose=False)
        self.name = f"llama:{os.path.basename(path)}"

    def count(self, text: str) -> int:
        """The model tokenizer's count for ``text``, without a BOS token and with
        special-token text counted as plain text (0 for an empty text)."""
        data = text.encode("utf-8", "surrogatepass")
        return len(self._llama.tokenize(data, add_bos=False, special=False)) if data else 0


def default_counter() -> TokenCounter:
    """The local model's tokenizer if ``llama-cpp-python`` and the model are installed,
    else :class:`EstimateTokenCounter`."""
    try:
        return LlamaTokenCounter()
    except Exception:  # noqa: BLE001 - any failure to load means: estimate instead
        return EstimateTokenCounter()


class CachedCounter:
    """Remembers the counts of the last ``size`` distinct texts (building a prompt
    recounts the same turns every step)."""

    def __init__(self, counter: TokenCounter, size: int = 65536) -> None:
        self.counter = counter
        self.size = size
        self._cache: dict[str, int] = {}
        self.name = counter.name

    def count(self, text: str) -> int:
        n = self._cache.get(text)
        if n is None:
            if len(self._cache) >= self.size:
                self._cache.pop(next(iter(self._cache)))
            n = self._cache[text] = self.counter.count(text)
        return n


def message_tokens(message: Message, count: Callable[[str], int]) -> int:
    """Tokens of one message: content, tool calls (name and arguments), template."""
    total = MESSAGE_OVERHEAD + (count(message.content) if message.content else 0)
    for call in message.tool_calls:
        total += count(call.name) + count(call.arguments) + 3
    return total
