"""Start-up checks, the explicitly unsafe mode, and the sandbox as a tool in a run."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tether.core import ToolCall
from tether.models import ScriptedModel
from tether.runtime import Agent, Runner
from tether.sandbox import (
    Sandbox,
    SandboxConfig,
    SandboxError,
    SandboxUnavailableError,
    python_tool,
    shell_tool,
)
from tether.store import SQLiteStore

from .conftest import requires_bwrap


async def test_without_bwrap_it_refuses_to_run(monkeypatch: pytest.MonkeyPatch,
                                               sandbox_root: Path) -> None:
    monkeypatch.setenv("PATH", str(sandbox_root))  # no bwrap on this PATH
    box = Sandbox(SandboxConfig(root=sandbox_root))
    with pytest.raises(SandboxUnavailableError) as info:
        await box.run_python("print('must not run')")
    assert "apt-get install bubblewrap" in (info.value.hint or "")


@requires_bwrap
async def test_a_probe_that_sees_the_host_stops_start_up(sandbox_root: Path) -> None:
    # Mounting the host's /etc breaks the isolation the probe checks for.
    box = Sandbox(SandboxConfig(root=sandbox_root, mounts=("/etc",)))
    with pytest.raises(SandboxUnavailableError) as info:
        await box.start()
    assert "/etc" in info.value.message
    with pytest.raises(SandboxError):
        await box.run_python("print(1)")  # closed: nothing runs after a failed start


@requires_bwrap
async def test_an_interpreter_that_cannot_start_stops_start_up(sandbox_root: Path) -> None:
    box = Sandbox(SandboxConfig(root=sandbox_root, python="/usr/bin/no-such-python"))
    with pytest.raises(SandboxUnavailableError) as info:
        await box.start()
    assert "did not run" in info.value.message


async def test_the_unsafe_mode_says_so_at_every_call(sandbox_root: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="tether.sandbox")
    async with Sandbox(SandboxConfig(root=sandbox_root, unsafe_no_isolation=True,
                                     pool_size=0)) as box:
        for _ in range(2):
            result = await box.run_python("print('hi')")
            assert result.stdout == "hi\n" and not result.isolated
    unsafe = [r for r in caplog.records if "UNSAFE" in r.getMessage()]
    assert len(unsafe) == 3  # start-up and each of the two calls


@requires_bwrap
async def test_shell_needs_to_be_allowed(sandbox_root: Path) -> None:
    async with Sandbox(SandboxConfig(root=sandbox_root, pool_size=0)) as box:
        with pytest.raises(SandboxError):
            await box.run_shell("echo hi")
    async with Sandbox(SandboxConfig(root=sandbox_root, pool_size=1, allow_shell=True)) as box:
        result = await box.run_shell("echo hi > out.txt; cat out.txt; id -u; ls /")
        assert result.exit_code == 0 and result.stdout.startswith("hi\n")
        assert [f.path for f in result.files] == ["out.txt"]


@requires_bwrap
async def test_large_files_come_back_by_reference(sandbox_root: Path) -> None:
    async with Sandbox(SandboxConfig(root=sandbox_root, pool_size=0)) as box:
        result = await box.run_python(
            "open('small.txt','w').write('tiny')\nopen('big.bin','wb').write(bytes(100_000))\n"
            "import os; os.mkdir('sub'); open('sub/x.txt','w').write('x')")
    files = {f.path: f for f in result.files}
    assert set(files) == {"small.txt", "big.bin", "sub/x.txt"}
    assert files["small.txt"].content == "tiny" and files["small.txt"].stored_at is None
    assert files["big.bin"].content is None and files["big.bin"].size == 100_000
    assert files["big.bin"].stored_at and files["big.bin"].stored_at.endswith(
        files["big.bin"].sha256)


@requires_bwrap
async def test_the_sandbox_runs_as_a_tool_in_a_run(tmp_path: Path, sandbox_root: Path) -> None:
    async with Sandbox(SandboxConfig(root=sandbox_root, pool_size=1, allow_shell=True)) as box:
        model = ScriptedModel([
            ToolCall.of("run_python", code="open('a.txt','w').write('1')\nprint(6 * 7)",
                        call_id="c1"),
            ToolCall.of("run_python", code="import os\nprint(sorted(os.listdir('.')))",
                        call_id="c2"),
            ToolCall.of("run_shell", command="ls", call_id="c3"),
            "42",
        ])
        agent = Agent(name="coder", model=model,
                      tools=[python_tool(box, persist_files=True), shell_tool(box)])
        store = SQLiteStore(tmp_path / "tether.db")
        result = await Runner(store).run(agent, "compute")
        events = await store.read(result.run_id)
        await store.close()
    outputs = [json.loads(e.payload["content"]) for e in events if e.type == "tool.result"]
    assert outputs[0]["stdout"] == "42\n" and outputs[0]["files"][0]["path"] == "a.txt"
    assert outputs[1]["stdout"] == "['a.txt']\n"  # persisted across calls of the run
    assert outputs[2]["stdout"] == ""  # the shell tool's directory is per call
    assert result.output == "42"
