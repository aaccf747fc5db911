"""The ``tether`` command."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from . import _observe, _runs

app = typer.Typer(
    name="tether",
    help="Run LLM agents durably, and read what they did.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        try:
            print(f"tether {version('tether')}")
        except PackageNotFoundError:  # running from a source tree that was not installed
            print("tether (not installed)")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Print Tether's version and exit.")] = False,
) -> None:
    """Run LLM agents durably, and read what they did."""


app.registered_commands.extend(_runs.app.registered_commands)
app.registered_commands.extend(_observe.app.registered_commands)


def main() -> None:
    """Entry point of the ``tether`` console script."""
    app()
