"""Storage faults become typed store errors, and a failed transaction never hides why.

SQLite rolls a transaction back by itself after some errors (a full disk, an I/O
error); a ``ROLLBACK`` issued after that fails with "no transaction is active" and,
raised from an ``except`` block, would replace the real error. :func:`rollback` only
rolls back a transaction that is still open, and never raises.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import apsw

from ..core import (
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreIOError,
    StoreLockedError,
    StoreReadOnlyError,
)

#: What was committed before a failed commit stays committed; the failed one is not.
_INTACT = "every earlier commit is intact and the failed one wrote nothing"


def rollback(db: apsw.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already; never raise."""
    try:
        if db.in_transaction:
            db.execute("ROLLBACK")
    except apsw.Error:  # the connection is unusable; the caller's error says why
        pass


def locked(path: Path, bound_ms: int) -> StoreLockedError:
    return StoreLockedError(
        f"the database {path} stayed locked by another process for {bound_ms} ms",
        hint="wait for the other process or stop it, or raise TETHER_BUSY_TIMEOUT_MS; "
             + _INTACT,
    )


def read_only(path: Path, why: str) -> StoreReadOnlyError:
    return StoreReadOnlyError(
        f"the database {path} cannot be written: {why}",
        hint="views (tether runs/show/trace) read it as it is; to write, make the file, "
             "its directory and its mount writable",
    )


def translate(error: BaseException, path: Path) -> BaseException:
    """The Tether error an ``apsw`` or OS error stands for (others are returned as they are)."""
    if isinstance(error, apsw.BusyError | apsw.LockedError):
        return StoreLockedError(
            f"the database {path} is locked by another process",
            hint="wait for the other process or stop it, or raise TETHER_BUSY_TIMEOUT_MS",
        )
    if isinstance(error, apsw.FullError):
        return StoreFullError(
            f"the disk holding {path} is full ({error})",
            hint=f"free space (or raise the file size limit), then resume the run: {_INTACT}",
        )
    if isinstance(error, apsw.ReadOnlyError | apsw.PermissionsError):
        return read_only(path, str(error))
    if isinstance(error, apsw.IOError):
        return StoreIOError(
            f"the operating system failed to read or write {path} ({error})",
            hint=f"check the disk and its file system (dmesg), then resume the run; {_INTACT}",
        )
    if isinstance(error, apsw.NotADBError | apsw.CorruptError):
        return StoreCorruptError(
            f"{path} is not a valid SQLite database ({error})",
            hint="point --db / TETHER_DB at a Tether database, or restore it from a backup",
        )
    if isinstance(error, apsw.CantOpenError):
        return StoreIOError(
            f"cannot open the database {path} ({error})",
            hint="check that the path is a file in an existing directory you may read "
                 "(and write, to run agents)",
        )
    if isinstance(error, apsw.ConnectionClosedError):
        return StoreError(f"the store {path} is closed",
                          hint="open the store again (tether.open_store)")
    if isinstance(error, apsw.Error):
        return StoreError(f"SQLite failed on {path} ({error})",
                          hint="report this with the message; the journal itself is intact")
    if isinstance(error, OSError):
        if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return read_only(path, error.strerror or str(error))
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            return StoreFullError(f"no space to create {path} ({error.strerror})",
                                  hint="free space on that disk")
        return StoreIOError(f"cannot create {path} ({error})",
                            hint="check the path and the disk")
    return error


@contextmanager
def translated(path: Path) -> Iterator[None]:
    """Raise apsw and OS errors as the Tether errors they stand for."""
    try:
        yield
    except (apsw.Error, OSError) as e:
        raise translate(e, path) from e
