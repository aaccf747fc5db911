"""The docs are tested: every ```python block of the README and docs/ runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks() -> list[tuple[str, int, str]]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in re.finditer(r"```python\n(.*?)```", text, re.S):
            found.append((page.name, text[: match.start()].count("\n") + 1, match.group(1)))
    return found


@pytest.mark.parametrize(("page", "line", "code"), _blocks(),
                         ids=[f"{p}:{n}" for p, n, _ in _blocks()])
def test_python_blocks_run(page: str, line: int, code: str, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{page}:{line}", "exec"), {"__name__": "__docs__"})


def test_readme_opens_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```") + 1 : lines.index("```", lines.index("```") + 1)]
    assert [line.split()[:2] for line in block] == [["make", "run"], ["make", "test"]]
