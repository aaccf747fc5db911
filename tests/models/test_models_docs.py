"""docs/models.md: every Python block runs as it is, offline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def _blocks() -> list[tuple[int, str]]:
    text = PAGE.read_text()
    return [
        (text[: m.start()].count("\n") + 1, m.group(1))
        for m in re.finditer(r"```python\n(.*?)```", text, re.S)
    ]


@pytest.mark.parametrize(("line", "code"), _blocks(), ids=[f"models.md:{n}" for n, _ in _blocks()])
def test_python_blocks_run(line: int, code: str) -> None:
    exec(compile(code, f"models.md:{line}", "exec"), {"__name__": "__docs__"})


def test_every_selection_form_is_documented() -> None:
    text = PAGE.read_text()
    for form in ("`local`", "`local:/path/model.gguf`", "`openai:", "`anthropic:",
                 "`openai-compatible:"):  # fmt: skip
        assert form in text, form
