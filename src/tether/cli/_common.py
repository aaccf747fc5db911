"""Shared pieces of the CLI: the store option, error display, time formatting."""

from __future__ import annotations

import asyncio
import functools
import os
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ..core import TetherError, UsageError
from ..store import Store, open_store

P = ParamSpec("P")
T = TypeVar("T")

#: Piped output is not cut to 80 columns (rich's default away from a terminal).
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True, soft_wrap=True)

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="Database file (default: $TETHER_DB or ./.tether/tether.db).",
                 show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def handle_errors(function: Callable[P, T]) -> Callable[P, T]:
    """Show Tether errors as a message and a hint, with exit code 2 (misuse) or 1."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return function(*args, **kwargs)
        except TetherError as e:
            errors.print(f"[bold red]error:[/] {escape(e.message)}", highlight=False)
            where = ", ".join(x for x in (e.run_id and f"run {e.run_id}",
                                          e.step is not None and f"step {e.step}") if x)
            if where:
                errors.print(f"  where: {escape(where)}", highlight=False)
            if e.hint:
                errors.print(f"  [bold]hint:[/] {escape(e.hint)}", highlight=False)
            raise typer.Exit(2 if isinstance(e, UsageError) else 1) from None

    return wrapper


async def _open(db: Path | None, write: bool | None) -> Store:
    """Open the store: writers (``run``, ``resume``, ``resolve``) create it if missing;
    views open it read-only, so a mistyped ``--db`` is an error and never a new empty
    database. ``doctor --save`` writes its findings only where the file is writable."""
    if write:
        return open_store(db)
    store = open_store(db, readonly=True)
    if write is None:  # write if the file can be written, else stay read-only
        path = getattr(store, "path", None)
        if path is not None and os.access(path, os.W_OK) and os.access(path.parent, os.W_OK):
            await store.close()
            return open_store(db, create=False)
    return store


def with_store(
    db: Path | None, work: Callable[[Store], Coroutine[Any, Any, T]], *,
    write: bool | None = False,
) -> T:
    """Open the store (read-only unless ``write``; ``None``: writable if the file is),
    run ``work`` on it, close it."""

    async def main() -> T:
        store = await _open(db, write)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(main())


def full_run_id(db: Path | None, run_id: str) -> str:
    """The run id that ``run_id`` names: itself, or the one run whose id it begins."""

    async def match(store: Store) -> str:
        found = await store.match_run_ids(run_id)
        if run_id in found or not found:
            return run_id  # exact, or unknown: the command says it is not there
        if len(found) > 1:
            shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
            raise UsageError(f"{run_id!r} is the start of more than one run id: {shown}",
                             hint="give more of the run id")
        return found[0]

    return with_store(db, match)


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"
