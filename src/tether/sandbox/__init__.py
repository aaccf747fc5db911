"""Sandboxed code execution: model-written Python and shell in bubblewrap sandboxes."""

from ._config import ExecResult, FileRef, SandboxConfig, SandboxLimits
from ._errors import SandboxError, SandboxUnavailableError
from ._sandbox import Sandbox
from ._seccomp import DENIED_SYSCALLS, seccomp_program
from ._tools import python_tool, result_payload, shell_tool

__all__ = [
    "DENIED_SYSCALLS",
    "ExecResult",
    "FileRef",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "SandboxLimits",
    "SandboxUnavailableError",
    "python_tool",
    "result_payload",
    "seccomp_program",
    "shell_tool",
]
