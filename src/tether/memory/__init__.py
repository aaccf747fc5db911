"""Long-term memory and the context builder.

A :class:`SQLiteMemoryStore` (FTS5 BM25 + sqlite-vec vectors, fused by reciprocal
rank, with deduplication and supersession) behind the :class:`MemoryStore` protocol;
embedders (:class:`MiniLMEmbedder`, offline; :class:`OpenAIEmbedder`); the agent's
tools (:func:`memory_tools`); and :class:`ContextBuilder`, which assembles each
prompt under a token budget. See docs/memory.md.
"""

from ._context import BuiltContext, ContextBuilder, ContextPart
from ._embed import Embedder, MiniLMEmbedder, OpenAIEmbedder
from ._errors import (
    ContextBudgetError,
    EmbedderMismatchError,
    EmbeddingError,
    MemoryStoreError,
    VectorExtensionError,
)
from ._policy import MemoryPolicy
from ._protocol import MemoryStore
from ._schema import MIGRATION_SET, load_vec
from ._sqlite import PreparedMemory, SQLiteMemoryStore
from ._text import normalise_text
from ._tokens import (
    EstimateTokenCounter,
    LlamaTokenCounter,
    TokenCounter,
    default_counter,
    message_tokens,
)
from ._tools import memory_tools, offload_large_results
from ._types import Hit, Memory, Namespace, Provenance, WriteOutcome

__all__ = [
    "MIGRATION_SET",
    "BuiltContext",
    "ContextBudgetError",
    "ContextBuilder",
    "ContextPart",
    "Embedder",
    "EmbedderMismatchError",
    "EmbeddingError",
    "EstimateTokenCounter",
    "Hit",
    "LlamaTokenCounter",
    "Memory",
    "MemoryPolicy",
    "MemoryStore",
    "MemoryStoreError",
    "MiniLMEmbedder",
    "Namespace",
    "OpenAIEmbedder",
    "PreparedMemory",
    "Provenance",
    "SQLiteMemoryStore",
    "TokenCounter",
    "VectorExtensionError",
    "WriteOutcome",
    "default_counter",
    "load_vec",
    "memory_tools",
    "message_tokens",
    "normalise_text",
    "offload_large_results",
]
