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

_PIECE = re.compile(r"[A-Za-z]+|[0-9]|[^\sA-Za-z0-9]|\s+")

#: Tokens a chat template adds around each message (SmolLM2: ``<|im_start|>role\n`` ...
#: ``<|im_end|>\n``).
MESSAGE_OVERHEAD = 5


@runtime_checkable
class TokenCounter(Protocol):
    """Counts the tokens of a text for one model family."""

    @property
    def name(self) -> str: ...

    def count(self, text: str) -> int:
        """Tokens of ``text``."""
        ...


class EstimateTokenCounter:
    """An estimate from the text's shape, no tokenizer needed.

    Letters count one token per ``letters_per_token`` (at least one per word), each
    digit one, each other non-space character one (non-ASCII characters one per
    UTF-8 byte pair), runs of whitespace beyond a single space one per
    ``spaces_per_token``. ``safety`` scales the sum up so that it rarely
    under-counts (see docs/memory.md for its measured error).
    """

    name = "estimate"

    def __init__(self, *, letters_per_token: float = 4.2, spaces_per_token: float = 4.0,
                 safety: float = 1.1) -> None:
        self.letters_per_token = letters_per_token
        self.spaces_per_token = spaces_per_token
        self.safety = safety

    def count(self, text: str) -> int:
        total = 0.0
        for piece in _PIECE.findall(text):
            c = piece[0]
            if c.isalpha() and c.isascii():
                total += max(1.0, len(piece) / self.letters_per_token)
            elif c.isspace():
                total += (len(piece) - 1) / self.spaces_per_token if piece != " " else 0.0
            elif c.isascii():
                total += 1.0
            else:
                total += max(1.0, len(c.encode("utf-8", "surrogatepass")) / 2)
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
