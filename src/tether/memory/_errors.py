"""The memory package's errors: subclasses of the core tree (``tether.core``).

::

    ConfigurationError
    └── VectorExtensionError     sqlite-vec cannot be loaded: install it, or fix the path
    UsageError
    └── EmbedderMismatchError    a memory store was written by another embedder
    StoreError
    └── MemoryStoreError         the long-term store could not be read or written
    ContextBudgetError (UsageError)   the fixed parts of a prompt exceed the budget
    EmbeddingError (RunError)         an embedder (local model, HTTP API) failed
"""

from __future__ import annotations

from ..core import ConfigurationError, RunError, StoreError, UsageError


class VectorExtensionError(ConfigurationError):
    """The ``sqlite-vec`` extension is missing or cannot be loaded into SQLite."""


class EmbedderMismatchError(UsageError):
    """The store holds vectors of another embedder (name or dimension)."""


class MemoryStoreError(StoreError):
    """The long-term memory store could not be read or written."""


class ContextBudgetError(UsageError):
    """Instructions, task and pinned facts alone do not fit the token budget."""


class EmbeddingError(RunError):
    """An embedder failed to embed texts (provider error, bad response)."""
