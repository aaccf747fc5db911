"""Sealing: the journal keeps redacted payloads, and the originals encrypted beside them.

Redaction must never change what runs: the model, the tools and reconcile hooks see,
live or after a resume, exactly what they would have seen without it. So an event is
committed twice over in one payload:

- the payload, redacted (what every reader, view and export shows);
- under the reserved key :data:`SEALED_KEY`, the original value of every string (or
  dict, when a key was redacted) that redaction changed, as ``[path, original]``
  pairs in one AES-256-GCM ciphertext whose associated data is the run id and the
  event's ``seq``, so a sealed value cannot be moved to another run or event.

The runtime folds the original events into the live state; on resume it unseals the
journal (:meth:`Sealer.unseal`) before folding it. Readers drop the sealed part with
:func:`visible` (one function, used by every reader path).

The key (32 bytes) comes from ``TETHER_SEAL_KEY`` (base64), or else from a key file:
``TETHER_SEAL_KEY_FILE``, by default ``$XDG_CONFIG_HOME/tether/seal.key``
(``~/.config/tether/seal.key``), generated with permissions 0600 the first time a
value must be sealed. Sealing never needs the key when nothing was redacted.
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import hashlib
import json
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from ._errors import SealedValueError, SealKeyError, UsageError
from ._events import Event, EventType
from ._redact import Redactor

#: The payload key holding an event's sealed originals. Readers drop it (:func:`visible`).
SEALED_KEY: Final = "$sealed"
KEY_ENV: Final = "TETHER_SEAL_KEY"
#: Events only people read: redacted, never sealed (nothing runs from them, and a run
#: stopped because its journal cannot be unsealed must not need a key to say so).
UNSEALED_TYPES: Final = frozenset({
    EventType.RUN_FAILED, EventType.RUN_NEEDS_ATTENTION, EventType.RUN_QUARANTINED,
    EventType.FINDING,
})
KEY_FILE_ENV: Final = "TETHER_SEAL_KEY_FILE"
_VERSION = 1
_NONCE = 12


def default_key_file(environ: Mapping[str, str] | None = None) -> Path:
    """``$TETHER_SEAL_KEY_FILE``, else ``$XDG_CONFIG_HOME/tether/seal.key`` (default
    ``~/.config/tether/seal.key``)."""
    env = os.environ if environ is None else environ
    if env.get(KEY_FILE_ENV):
        return Path(env[KEY_FILE_ENV]).expanduser()
    config = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "tether" / "seal.key"


def key_id(key: bytes) -> str:
    """A short public fingerprint of a key (recorded with what it seals)."""
    return hashlib.blake2b(key, digest_size=8, person=b"tether-seal-kid").hexdigest()


def _parse_key(text: str, where: str) -> bytes:
    hint = (f"{where} must hold 32 random bytes in base64; make one with "
            "`python -c \"import base64, os; print(base64.b64encode(os.urandom(32)).decode())\"`"
            " (a new key cannot open what an old one sealed)")
    raw = text.strip().encode("ascii", "replace")
    try:
        key = base64.b64decode(raw.replace(b"-", b"+").replace(b"_", b"/"), validate=True)
    except (binascii.Error, ValueError):
        raise SealKeyError(f"the seal key in {where} is not valid base64", hint=hint) from None
    if len(key) != 32:
        raise SealKeyError(
            f"the seal key in {where} is {len(key)} bytes long, not 32", hint=hint)
    return key


def _read_key_file(path: Path) -> bytes:
    try:
        info = path.stat()
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SealKeyError(
                f"the seal key file {path} can be read or written by other users "
                f"(mode {stat.S_IMODE(info.st_mode):o})",
                hint=f"chmod 600 {path}",
            )
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError as e:
        raise SealKeyError(f"cannot read the seal key file {path}: {e.strerror}",
                           hint=f"check {path} and its permissions, or set {KEY_ENV}") from e
    return _parse_key(text, str(path))


def _create_key_file(path: Path) -> None:
    """Write a new random key to ``path`` (0600), unless another process got there first."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, base64.b64encode(os.urandom(32)) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temp, path)  # atomic, and never replaces a key another process made
    except FileExistsError:
        pass
    finally:
        os.unlink(temp)


class SealKey:
    """Where the seal key comes from, loaded on first use.

    Args:
        key: The key itself (32 bytes, or their base64); default from the environment.
        key_file: The key file to use when no key is given and ``TETHER_SEAL_KEY`` is
            not set (default :func:`default_key_file`).
        environ: The environment to read (default ``os.environ``).

    Raises:
        SealKeyError: the key given, or in ``TETHER_SEAL_KEY``, is not 32 bytes of base64.
    """

    def __init__(
        self, key: bytes | str | None = None, *, key_file: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self._key: bytes | None = None
        if isinstance(key, bytes):
            if len(key) != 32:
                raise SealKeyError(f"a seal key is 32 bytes, not {len(key)}",
                                   hint="pass os.urandom(32), or its base64")
            self._key = key
            self.source = "the key given"
        elif key is not None:
            self._key = _parse_key(key, "the key given")
            self.source = "the key given"
        elif key_file is None and env.get(KEY_ENV):
            self._key = _parse_key(env[KEY_ENV], KEY_ENV)
            self.source = KEY_ENV
        self.path = Path(key_file) if key_file is not None else default_key_file(env)
        if self._key is None:
            self.source = str(self.path)

    def get(self, *, create: bool) -> bytes | None:
        """The key; with ``create``, a missing key file is generated first. None if
        there is no key and ``create`` is false.

        Raises:
            SealKeyError: the key file is unreadable, corrupt, or open to other users.
        """
        if self._key is None:
            if not self.path.exists():
                if not create:
                    return None
                try:
                    _create_key_file(self.path)
                except OSError as e:
                    raise SealKeyError(
                        f"cannot create the seal key file {self.path}: {e.strerror}",
                        hint=f"set {KEY_ENV} (base64 of 32 random bytes) or "
                             f"{KEY_FILE_ENV} to a writable path",
                    ) from e
            self._key = _read_key_file(self.path)
        return self._key


def _changes(original: Any, redacted: Any, path: list[Any], out: list[list[Any]]) -> None:
    """The ``[path, original]`` pairs that turn ``redacted`` back into ``original``."""
    if original is redacted:
        return
    if isinstance(original, dict) and isinstance(redacted, dict):
        if list(original) == list(redacted):
            for key, value in original.items():
                _changes(value, redacted[key], [*path, str(key)], out)
            return
    elif (isinstance(original, list | tuple) and isinstance(redacted, list | tuple)
          and len(original) == len(redacted)):
        for index, (a, b) in enumerate(zip(original, redacted, strict=True)):
            _changes(a, b, [*path, index], out)
        return
    elif original == redacted:
        return
    out.append([path, original])


def _put(payload: dict[str, Any], path: list[Any], value: Any) -> None:
    container: Any = payload
    for step in path[:-1]:
        container = container[step]
    last = path[-1]
    if isinstance(container, list):
        container[int(last)] = value
    elif isinstance(container, dict) and isinstance(last, str) and last in container:
        container[last] = value
    else:
        raise KeyError(last)


def visible(event: Event) -> Event:
    """``event`` as readers and exports show it: without its sealed originals."""
    payload = event.payload
    if SEALED_KEY not in payload:
        return event
    return dataclasses.replace(
        event, payload={k: v for k, v in payload.items() if k != SEALED_KEY})


class Sealer:
    """Redacts events for the journal and seals what it replaced; unseals on resume.

    Args:
        redactor: What to redact (default :meth:`Redactor.from_env`).
        key: Where the key comes from (default :class:`SealKey` from the environment).
    """

    def __init__(self, redactor: Redactor | None = None, key: SealKey | None = None) -> None:
        self.redactor = redactor if redactor is not None else Redactor.from_env()
        self.key = key if key is not None else SealKey()
        self._aead: Any = None
        self._kid = ""

    def _cipher(self, *, create: bool) -> Any:
        if self._aead is None:
            key = self.key.get(create=create)
            if key is None:
                return None
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._aead, self._kid = AESGCM(key), key_id(key)
        return self._aead

    @staticmethod
    def _aad(event: Event) -> bytes:
        return json.dumps(["tether-seal", _VERSION, event.run_id, event.seq]).encode()

    def seal(self, event: Event) -> Event:
        """``event`` as the journal keeps it: redacted, with what redaction replaced
        sealed under :data:`SEALED_KEY` (the same object if nothing was redacted).
        Events of :data:`UNSEALED_TYPES` are only redacted.

        Raises:
            SealKeyError: something must be sealed and the key cannot be loaded.
        """
        original = event.payload
        if SEALED_KEY in original:
            raise UsageError(f"{SEALED_KEY!r} is a reserved payload key",
                             hint="rename the field of the payload")
        redacted = self.redactor.redact_payload(original)
        if redacted is original:
            return event
        pairs: list[list[Any]] = []
        if event.type not in UNSEALED_TYPES:
            _changes(original, redacted, [], pairs)
        if not pairs:
            return dataclasses.replace(event, payload=redacted)
        aead = self._cipher(create=True)
        nonce = os.urandom(_NONCE)
        plain = json.dumps(pairs, separators=(",", ":")).encode("utf-8", "surrogatepass")
        box = nonce + aead.encrypt(nonce, plain, self._aad(event))
        sealed = {"v": _VERSION, "kid": self._kid, "data": base64.b64encode(box).decode()}
        return dataclasses.replace(event, payload={**redacted, SEALED_KEY: sealed})

    def unseal(self, event: Event) -> Event:
        """The original of a journaled ``event`` (itself if nothing in it is sealed).

        Raises:
            SealedValueError: the sealed values cannot be opened (no key, another key,
                or the event was altered or moved).
            SealKeyError: the key file is unreadable or corrupt.
        """
        payload = event.payload
        sealed = payload.get(SEALED_KEY)
        if sealed is None:
            return event
        where = f"event {event.seq} ({event.type}) of run {event.run_id}"
        kid = str(sealed.get("kid", "?")) if isinstance(sealed, dict) else "?"
        hint = (f"resume with the key the run was sealed with (key id {kid}): set {KEY_ENV}, "
                f"or {KEY_FILE_ENV} to its key file, then `tether resume {event.run_id}`")
        aead = self._cipher(create=False)
        if aead is None:
            raise SealedValueError(
                f"{where} holds sealed (redacted) values and there is no seal key: "
                f"{KEY_ENV} is not set and {self.key.path} does not exist",
                hint=hint, run_id=event.run_id)
        if kid != self._kid:
            raise SealedValueError(
                f"{where} was sealed with key {kid}, and the key in use ({self.key.source}) "
                f"is {self._kid}", hint=hint, run_id=event.run_id)
        try:
            box = base64.b64decode(sealed["data"], validate=True)
            plain = aead.decrypt(box[:_NONCE], box[_NONCE:], self._aad(event))
            pairs = json.loads(plain.decode("utf-8", "surrogatepass"))
            restored = copy.deepcopy({k: v for k, v in payload.items() if k != SEALED_KEY})
            for path, value in pairs:
                if path:
                    _put(restored, path, value)
                else:
                    restored = value
        except Exception as e:  # InvalidTag, bad base64, a path that is not there
            raise SealedValueError(
                f"the sealed values of {where} cannot be opened with key {self._kid}: they "
                "were altered, or copied from another run or event",
                hint="restore the journal from a backup, or settle the run by hand with "
                     "`tether resolve`", run_id=event.run_id) from e
        return dataclasses.replace(event, payload=restored)

    def unseal_all(self, events: Iterable[Event]) -> list[Event]:
        """:meth:`unseal` of each event."""
        return [self.unseal(e) for e in events]
