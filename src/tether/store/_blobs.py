"""Content-addressed payload storage: large strings are stored once and referenced.

A step writes only what is new: a tool result that is later sent back to the model
inside a ``model.request`` is the same string, so the same blob. Shared by every
Store implementation.
"""

from __future__ import annotations

import hashlib
from typing import Any

#: Strings at least this long (in characters) are moved out of payloads into blobs.
BLOB_THRESHOLD = 256
BLOB_KEY = "$blob"


def blob_hash(data: bytes) -> str:
    """128-bit BLAKE2b of ``data``, hex: the blob's address."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def externalize(value: Any, blobs: dict[str, bytes]) -> Any:
    """Return ``value`` with every long string replaced by ``{"$blob": hash}``.

    The replaced strings are added to ``blobs`` (hash -> UTF-8 bytes).
    """
    if isinstance(value, str):
        if len(value) < BLOB_THRESHOLD:
            return value
        data = value.encode()
        key = blob_hash(data)
        blobs[key] = data
        return {BLOB_KEY: key}
    if isinstance(value, dict):
        return {k: externalize(v, blobs) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [externalize(v, blobs) for v in value]
    return value


def blob_refs(value: Any, found: set[str]) -> None:
    """Collect the blob hashes referenced anywhere in ``value``."""
    if isinstance(value, dict):
        ref = value.get(BLOB_KEY)
        if isinstance(ref, str) and len(value) == 1:
            found.add(ref)
            return
        for v in value.values():
            blob_refs(v, found)
    elif isinstance(value, list):
        for v in value:
            blob_refs(v, found)


def internalize(value: Any, blobs: dict[str, str]) -> Any:
    """The inverse of :func:`externalize`, given the referenced blobs as text."""
    if isinstance(value, dict):
        ref = value.get(BLOB_KEY)
        if isinstance(ref, str) and len(value) == 1:
            return blobs[ref]
        return {k: internalize(v, blobs) for k, v in value.items()}
    if isinstance(value, list):
        return [internalize(v, blobs) for v in value]
    return value
