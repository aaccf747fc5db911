"""Settings and results of sandboxed execution: plain frozen data."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

MiB = 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class SandboxLimits:
    """Resource limits of one execution, set with ``setrlimit`` inside the sandbox
    before the code runs (hard limits: the code cannot raise them again).

    Args:
        cpu_s: CPU seconds (``RLIMIT_CPU``); the process is killed past it.
        memory_mb: Address space of each process (``RLIMIT_AS``).
        processes: Processes and threads the sandbox's user may have (``RLIMIT_NPROC``,
            counted inside the sandbox's own user namespace).
        file_size_mb: Largest file the code may write (``RLIMIT_FSIZE``).
        open_files: Open file descriptors (``RLIMIT_NOFILE``).
        wall_s: Wall-clock seconds; past them the whole sandbox (every process of its
            PID namespace) is killed.
        max_output_bytes: Bytes kept of stdout and of stderr each; the rest is dropped
            and the result says so.
        kill_output_bytes: Bytes of output after which the sandbox is killed rather
            than drained (a program printing forever).
        tmp_mb: Size of the sandbox's private ``/tmp`` and of its ``/dev/shm`` (each a
            tmpfs, in memory); set per sandbox configuration, not per call.
    """

    cpu_s: int = 10
    memory_mb: int = 1024
    processes: int = 64
    file_size_mb: int = 64
    open_files: int = 256
    wall_s: float = 30.0
    max_output_bytes: int = 256 * 1024
    kill_output_bytes: int = 16 * MiB
    tmp_mb: int = 64


@dataclass(frozen=True, kw_only=True)
class SandboxConfig:
    """How sandboxes are built.

    Args:
        python: The interpreter run inside the sandbox (a path as seen inside it). It
            must live under ``/usr`` or under one of ``mounts``.
        python_path: Directories put first on the sandbox's ``sys.path`` (for example a
            virtualenv's ``site-packages``); each must be under ``/usr`` or ``mounts``.
        mounts: Host paths mounted read-only at the same path inside the sandbox.
            Nothing else of the host is visible beyond ``/usr`` (and its ``/bin``,
            ``/lib`` links).
        limits: Default resource limits of each execution.
        allow_shell: Whether :meth:`Sandbox.run_shell` (and the shell tool) may run.
        pool_size: Sandboxes kept started and waiting for code (each used once).
        root: Host directory holding work directories and large output files;
            default: a fresh directory under the system's temporary directory.
        inline_file_bytes: Files the code writes up to this size come back with their
            content (when it is UTF-8 text); larger ones by reference.
        unsafe_no_isolation: Run code directly on the host, without any isolation.
            For development only; every call logs a warning. Never chosen
            automatically.
    """

    python: str = "/usr/bin/python3"
    python_path: tuple[str, ...] = ()
    mounts: tuple[str, ...] = ()
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    allow_shell: bool = False
    pool_size: int = 2
    root: Path | None = None
    inline_file_bytes: int = 4096
    unsafe_no_isolation: bool = False


@dataclass(frozen=True, kw_only=True)
class FileRef:
    """A file the code left in its work directory.

    ``content`` holds small UTF-8 files inline; a larger (or binary) file is copied to
    ``stored_at`` (a content-addressed host path, ``sha256`` names it) and can be read
    from there or handed to a memory store.
    """

    path: str
    size: int
    sha256: str
    content: str | None = None
    stored_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class ExecResult:
    """What one sandboxed execution did.

    ``exit_code`` is the process's status (negative: killed by that signal);
    ``killed`` says why Tether killed it, when it did (``"timeout"``, ``"output"``,
    ``"cancelled"``).
    """

    kind: Literal["python", "shell"]
    exit_code: int
    stdout: str
    stderr: str
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration_ms: float
    killed: Literal["timeout", "output", "cancelled"] | None = None
    files: tuple[FileRef, ...] = ()
    files_truncated: bool = False
    isolated: bool = True

    @property
    def ok(self) -> bool:
        """The command exited with status 0 and Tether did not kill it (a timeout or
        too much output); a truncated output or file list is still ``ok``."""
        return self.exit_code == 0 and self.killed is None
