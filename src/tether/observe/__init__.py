"""Readers of the journal: descriptions, logs, exports, cost, redaction, the doctor."""

from ._describe import describe

__all__ = ["describe"]
