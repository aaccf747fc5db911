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
#: Wraps a payload's own dict that happens to use one of these two keys, so that data
#: from outside (a model's tool arguments) can never pass for a blob reference.
ESCAPE_KEY = "$escaped"
_RESERVED = (BLOB_KEY, ESCAPE_KEY)


def encode(text: str) -> bytes:
    """UTF-8, keeping lone surrogates (from undecodable file names, say) round-trippable."""
    return text.encode("utf-8", "surrogatepass")


def decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def blob_hash(data: bytes) -> str:
    """128-bit BLAKE2b of ``data``, hex: the blob's address."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


_SCALARS = (int, float, bool, type(None))


def externalize(value: Any, blobs: dict[str, bytes]) -> Any:
    """Return ``value`` with every long string replaced by ``{"$blob": hash}``.

    The replaced strings are added to ``blobs`` (hash -> UTF-8 bytes). This runs on
    every event committed, so short strings and scalars are passed over inline.
    """
    kind = type(value)
    if kind is str:
        if len(value) < BLOB_THRESHOLD:
            return value
        data = encode(value)
        key = blob_hash(data)
        blobs[key] = data
        return {BLOB_KEY: key}
    if kind is dict:
        out = {}
        for k, v in value.items():
            inner = type(v)
            if (inner is str and len(v) < BLOB_THRESHOLD) or inner in _SCALARS:
                out[k] = v
            else:
                out[k] = externalize(v, blobs)
        if BLOB_KEY in value or ESCAPE_KEY in value:
            return {ESCAPE_KEY: out}
        return out
    if kind is list or kind is tuple:
        return [externalize(v, blobs) for v in value]
    # Subclasses (an enum's str, an OrderedDict...): as their base type.
    if isinstance(value, str):
        return externalize(str(value), blobs)
    if isinstance(value, dict):
        return externalize(dict(value), blobs)
    if isinstance(value, list | tuple):
        return externalize(list(value), blobs)
    return value


def blob_refs(value: Any, found: set[str]) -> None:
    """Collect the blob hashes referenced anywhere in ``value``."""
    if isinstance(value, dict):
        if len(value) == 1 and BLOB_KEY in value:
            found.add(value[BLOB_KEY])
            return
        inner = value[ESCAPE_KEY] if len(value) == 1 and ESCAPE_KEY in value else value
        for v in inner.values():
            blob_refs(v, found)
    elif isinstance(value, list):
        for v in value:
            blob_refs(v, found)


def internalize(value: Any, blobs: dict[str, str]) -> Any:
    """The inverse of :func:`externalize`, given the referenced blobs as text."""
    if isinstance(value, dict):
        if len(value) == 1 and BLOB_KEY in value:
            return blobs[value[BLOB_KEY]]
        inner = value[ESCAPE_KEY] if len(value) == 1 and ESCAPE_KEY in value else value
        return {k: internalize(v, blobs) for k, v in inner.items()}
    if isinstance(value, list):
        return [internalize(v, blobs) for v in value]
    return value
