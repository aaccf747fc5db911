"""Collecting what the code wrote, without ever following a link it planted."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from ._config import FileRef

MAX_FILES = 100
MAX_STORED_BYTES = 256 * 1024 * 1024
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def _read_regular(path: Path) -> bytes | None:
    """The content of ``path`` if it is a regular file (checked on the open descriptor)."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None  # a symlink (ELOOP), vanished, or unreadable
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def collect_files(workdir: Path, store: Path, *, inline_bytes: int,
                  since_ns: int | None = None) -> tuple[tuple[FileRef, ...], bool]:
    """Regular files under ``workdir`` (modified at or after ``since_ns`` when given).

    Symbolic links, devices and FIFOs are skipped, never followed; directories are
    walked without following links. Small UTF-8 files come back inline, the others are
    copied to ``store/<sha256>``. Returns the files and whether the list was cut.
    """
    found: list[FileRef] = []
    stored = 0
    truncated = False
    for dirpath, dirnames, filenames in os.walk(workdir, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                info = path.lstat()
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            if since_ns is not None and info.st_mtime_ns < since_ns:
                continue
            if len(found) >= MAX_FILES:
                truncated = True
                continue
            data = _read_regular(path)
            if data is None:
                continue
            digest = hashlib.sha256(data).hexdigest()
            relative = str(path.relative_to(workdir))
            content = None
            if len(data) <= inline_bytes:
                try:
                    content = data.decode()
                except UnicodeDecodeError:
                    content = None
            stored_at = None
            if content is None and stored + len(data) <= MAX_STORED_BYTES:
                store.mkdir(parents=True, exist_ok=True)
                target = store / digest
                if not target.exists():
                    part = target.with_suffix(".part")
                    part.write_bytes(data)
                    part.replace(target)
                stored += len(data)
                stored_at = str(target)
            elif content is None:
                truncated = True
            found.append(FileRef(path=relative, size=len(data), sha256=digest,
                                 content=content, stored_at=stored_at))
    return tuple(found), truncated
