"""The sandbox as Tether tools: ``run_python`` and ``run_shell``."""

from __future__ import annotations

from typing import Any

from ..tools import Tool, ToolContext, tool
from ._config import ExecResult
from ._sandbox import Sandbox


def result_payload(result: ExecResult) -> dict[str, Any]:
    """What the model sees of an execution: output, status, files (by reference when
    large), and notes on anything cut or killed."""
    data: dict[str, Any] = {"exit_code": result.exit_code, "stdout": result.stdout,
                            "stderr": result.stderr, "duration_ms": round(result.duration_ms, 1)}
    notes = []
    if result.stdout_truncated or result.stderr_truncated:
        notes.append("output was cut to the sandbox's output cap")
    if result.killed == "timeout":
        notes.append("killed: wall-clock time limit reached")
    elif result.killed == "output":
        notes.append("killed: printed far more than the output cap")
    if result.files_truncated:
        notes.append("some files were not listed or stored")
    if notes:
        data["notes"] = notes
    if result.files:
        data["files"] = [
            {k: v for k, v in (("path", f.path), ("size", f.size), ("sha256", f.sha256),
                               ("content", f.content), ("stored_at", f.stored_at))
             if v is not None}
            for f in result.files
        ]
    return data


def python_tool(sandbox: Sandbox, *, name: str = "run_python", persist_files: bool = False,
                timeout_s: float | None = None) -> Tool:
    """A tool that runs model-written Python in ``sandbox``.

    Args:
        sandbox: The sandbox to run in (started on first use).
        name: The tool's name for the model.
        persist_files: Keep one work directory per run, so files written by one call
            are there for the next; otherwise each call starts in an empty directory.
        timeout_s: The tool's timeout for the runtime (the sandbox's own wall-clock
            limit kills the code either way).
    """

    async def run_python(code: str, ctx: ToolContext) -> dict[str, Any]:
        """Run a Python 3 program in an isolated sandbox without network access and
        return its stdout, stderr, exit code and the files it wrote in its working
        directory.

        Args:
            code: The complete program. Print what you want to see.
            ctx: The call's context (not shown to the model).
        """
        workdir = sandbox.workdir_for(ctx.run_id) if persist_files else None
        return result_payload(await sandbox.run_python(code, workdir=workdir))

    return tool(name=name, idempotent=not persist_files, timeout_s=timeout_s)(run_python)


def shell_tool(sandbox: Sandbox, *, name: str = "run_shell", persist_files: bool = False,
               timeout_s: float | None = None) -> Tool:
    """A tool that runs a shell command in ``sandbox`` (its config must allow shell).

    Args:
        sandbox: The sandbox to run in; built with ``SandboxConfig(allow_shell=True)``.
        name: The tool's name for the model.
        persist_files: One work directory per run instead of one per call.
        timeout_s: The tool's timeout for the runtime.
    """

    async def run_shell(command: str, ctx: ToolContext) -> dict[str, Any]:
        """Run a /bin/sh command in an isolated sandbox without network access and
        return its stdout, stderr, exit code and the files it wrote.

        Args:
            command: The shell command line.
            ctx: The call's context (not shown to the model).
        """
        workdir = sandbox.workdir_for(ctx.run_id) if persist_files else None
        return result_payload(await sandbox.run_shell(command, workdir=workdir))

    return tool(name=name, idempotent=not persist_files, timeout_s=timeout_s)(run_shell)
