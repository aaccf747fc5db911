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
_DIGITS = re.compile(r"[0-9]")
_PUNCT = re.compile(r"[!-/:-@\[-`{-~]+")
_NUMBERS = re.compile(r"[0-9]+")

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
    """An estimate from the text's shape, no tokenizer needed.

    Each ASCII word counts one, plus one per ``letters_per_token`` letters beyond six
    a word on average (rare long words split); each digit one and each number one more
    (the space before it); each run of ASCII punctuation one, plus half a token per
    further character; other characters one per ``bytes_per_token`` UTF-8 bytes;
    newlines one each. The shape follows SmolLM2's BPE. ``safety`` scales the sum up
    so that it rarely under-counts; its error against SmolLM2's tokenizer is measured
    by ``bench/memory.py`` (``token_estimate_error``) and documented in docs/memory.md.
    All counting is done by C-level string and regex calls: about 1 µs per 100
    characters.
    """

    name = "estimate"

    def __init__(self, *, letters_per_token: float = 3.0, bytes_per_token: float = 2.0,
                 safety: float = 1.1) -> None:
        self.letters_per_token = letters_per_token
        self.bytes_per_token = bytes_per_token
        self.safety = safety

    def count(self, text: str) -> int:
        """Estimated tokens of ``text``, rounded up (0 for an empty text); lone
        surrogates are counted, never raised on."""
        if not text:
            return 0
        words = _WORDS.findall(text)
        letters = sum(map(len, words))
        punct = sum(map(len, _PUNCT.findall(text)))
        punct_runs = len(_PUNCT.findall(text))
        ascii_chars = len(text.encode("ascii", "ignore"))
        other_bytes = len(text.encode("utf-8", "surrogatepass")) - ascii_chars
        total = (len(words) + max(0.0, letters - 6 * len(words)) / self.letters_per_token
                 + len(_DIGITS.findall(text)) + len(_NUMBERS.findall(text))
                 + punct_runs + (punct - punct_runs) / 2
                 + other_bytes / self.bytes_per_token + text.count("\n"))
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
