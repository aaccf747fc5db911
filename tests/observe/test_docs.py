"""The observability docs cover every command and every event type (their Python blocks
run in tests/test_docs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.cli import app
from tether.core import EventType

DOCS = Path(__file__).resolve().parents[2] / "docs"
COMMANDS = ("trace", "tail", "diff", "export", "doctor", "cost")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_observe_command_has_a_docs_entry(command: str) -> None:
    assert f"### `tether {command}`" in (DOCS / "observability.md").read_text()
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in
             app.registered_commands}
    assert command in names


def test_every_event_type_is_documented() -> None:
    text = (DOCS / "journal.md").read_text()
    for kind in EventType:
        assert f"### `{kind.value}`" in text or f"`{kind.value}`" in text, kind
