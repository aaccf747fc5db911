"""The ``tether`` command."""

from __future__ import annotations

import typer

from . import _observe, _runs

app = typer.Typer(
    name="tether",
    help="Run LLM agents durably, and read what they did.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.registered_commands.extend(_runs.app.registered_commands)
app.registered_commands.extend(_observe.app.registered_commands)


def main() -> None:
    """Entry point of the ``tether`` console script."""
    app()
