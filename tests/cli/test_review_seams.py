"""Attacker's review (issue 16): hostile and newer journals against the commands that
write into a held run (`tether approve`, `tether resolve`) and those that read it
(`tether export`). Real SQLite files, edited behind Tether's back."""

from __future__ import annotations

import json
from pathlib import Path

import apsw
import pytest
from typer.testing import CliRunner

from tether.cli import app
from tether.core import JOURNAL_FORMAT

from .test_approve_cli import _events, project  # noqa: F401  (the fixture)


def _held(cli: CliRunner) -> str:
    held = cli.invoke(app, ["run", "ops_agent.py:agent", "ship it"])
    assert "needs_attention" in held.output, held.output
    return next(w for w in held.output.split() if w.startswith("run_"))


def _edit(db: Path, run_id: str, event_type: str, new: object) -> None:
    con = apsw.Connection(str(db))
    try:
        (seq, payload), = con.execute(
            "SELECT seq, payload FROM events WHERE type = ? AND run_key = "
            "(SELECT run_key FROM runs WHERE run_id = ?)", (event_type, run_id)).fetchall()
        value = new(json.loads(payload)) if callable(new) else new
        con.execute("UPDATE events SET payload = ? WHERE seq = ? AND run_key = "
                    "(SELECT run_key FROM runs WHERE run_id = ?)",
                    (json.dumps(value), seq, run_id))
    finally:
        con.close()


@pytest.mark.parametrize("command", [["approve"], ["approve", "--deny"],
                                     ["resolve", "--result", "done by hand"]])
def test_a_newer_format_journal_is_not_written_to(project: Path,  # noqa: F811
                                                  command: list[str]) -> None:
    """Fixed: `approve`/`resolve` wrote a decision (and for a deny a tool.error) into
    a run whose ``run.started`` says a journal format this Tether does not know; only
    `resume` checked the format."""
    cli = CliRunner()
    run_id = _held(cli)
    db = project / "t.db"
    _edit(db, run_id, "run.started", lambda p: {**p, "format": JOURNAL_FORMAT + 1})
    before = _events(db, run_id)
    verb, *flags = command
    out = cli.invoke(app, [verb, run_id, "d1", *flags])
    assert out.exit_code != 0, out.output
    assert "journal format" in out.output, out.output
    assert isinstance(out.exception, SystemExit), repr(out.exception)  # no traceback
    assert _events(db, run_id) == before  # nothing was written
    assert not (project / "deploys").exists()


@pytest.mark.parametrize("command", ["show", "trace", "export"])
def test_a_payload_that_is_not_an_object_is_refused_clearly(project: Path,  # noqa: F811
                                                            command: str) -> None:
    """Fixed: `tether export` crashed with a raw AttributeError traceback on an event
    whose payload is a JSON array (the redactor walks payloads as dicts); the store now
    refuses such a row with a StoreCorruptError, as the typed payloads do."""
    cli = CliRunner()
    run_id = _held(cli)
    _edit(project / "t.db", run_id, "model.request", [1, 2, {"$sealed": "x"}])
    out = cli.invoke(app, [command, run_id])
    assert out.exit_code != 0, out.output
    assert isinstance(out.exception, SystemExit), repr(out.exception)
    assert "damaged" in out.output, out.output


HOSTILE = '''
from tether.core import ToolCall
from tether.models import ScriptedModel
from tether.runtime import Agent
from tether.tools import tool

@tool
def fetch(url: str) -> str:
    """Fetch a page."""
    return "page \\x1b]0;pwned\\x07 text \\x1b[2J \\x9b31m"

agent = Agent(name="reader", tools=[fetch],
              model=ScriptedModel([ToolCall.of("fetch", url="\\x1b[8mhidden"),
                                   "Read \\x1b[2J it."]))
'''


@pytest.mark.parametrize("command", ["show", "trace", "tail"])
def test_terminal_escapes_in_a_journal_do_not_reach_the_terminal(
        project: Path, command: str) -> None:  # noqa: F811
    """Fixed: a tool result or model answer holding ESC sequences (clear screen, set
    the window title, hide text) was printed raw by `tether show`/`trace`/`tail`;
    the one-line clips now show control characters as ``\\xNN``."""
    (project / "reader.py").write_text(HOSTILE)
    cli = CliRunner()
    ran = cli.invoke(app, ["run", "reader.py:agent", "read"])
    run_id = next(w for w in ran.output.split() if w.startswith("run_"))
    out = cli.invoke(app, [command, run_id])
    assert out.exit_code == 0, out.output
    if command != "trace":  # the content is there, escaped
        assert "\\x1b" in out.output, out.output
    for char in ("\x1b", "\x07", "\x9b"):
        assert char not in out.output, (command, out.output)
