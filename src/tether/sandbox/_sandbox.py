"""``Sandbox``: run model-written code in a bubblewrap sandbox, from a warm pool."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from ._bwrap import NOBODY, SANDBOX_ENV, WORKDIR, bwrap_argv, job
from ._config import ExecResult, SandboxConfig, SandboxLimits
from ._errors import SandboxError, SandboxUnavailableError
from ._files import collect_files
from ._probe import check_isolation
from ._seccomp import seccomp_program

logger = logging.getLogger("tether.sandbox")
_READ_CHUNK = 65536


@dataclass(eq=False)
class _Started:
    """A sandbox process waiting for its job on stdin."""

    process: asyncio.subprocess.Process
    workdir: Path
    own_workdir: bool
    isolated: bool


class Sandbox:
    """Runs Python (and, when allowed, shell commands) in isolated, throw-away sandboxes.

    Each execution gets fresh namespaces (no network, its own PID, IPC, UTS and user
    namespace), a read-only ``/usr``, a private writable ``/work``, an empty
    environment, a seccomp filter and hard resource limits. :meth:`start` first proves
    that isolation holds on this host and raises :class:`SandboxUnavailableError`
    when it does not. Use it as an async context manager, or call :meth:`start` and
    :meth:`close`.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._bwrap: str | None = None
        self._root: Path | None = None
        self._own_root = False
        self._pool: list[_Started] = []
        self._refills: set[asyncio.Task[None]] = set()
        self._cleanups: set[asyncio.Task[None]] = set()
        self._started = False
        self._pool_open = False
        self._closed = False

    # --- life cycle ---------------------------------------------------------------

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def root(self) -> Path:
        """The host directory holding work directories and stored files."""
        if self._root is None:
            if self.config.root is not None:
                self._root = Path(self.config.root)
                self._root.mkdir(parents=True, exist_ok=True)
            else:
                self._root = Path(tempfile.mkdtemp(prefix="tether-sandbox-"))
                self._own_root = True
            # bwrap (as the sandbox's user) resolves the work directory's path: it may
            # walk through the root, not list it.
            self._root.chmod(0o711)
        return self._root

    async def start(self) -> None:
        """Check isolation on this host and fill the warm pool.

        Raises:
            SandboxUnavailableError: ``bwrap`` is missing or a probe escaped.
        """
        if self._started:
            return
        if self.config.unsafe_no_isolation:
            logger.warning("UNSAFE: Sandbox(unsafe_no_isolation=True) runs model-written "
                           "code directly on this host, without any isolation")
        else:
            self._bwrap = shutil.which("bwrap")
            if self._bwrap is None:
                raise SandboxUnavailableError(
                    "bubblewrap (bwrap) is not installed, so code cannot be isolated",
                    hint="install it: `apt-get install bubblewrap` (Debian/Ubuntu), "
                         "`dnf install bubblewrap` (Fedora); `make test` does it as root",
                )
            seccomp_program()
            _check_reachable(self.root)
            self._started = True
            try:
                await check_isolation(self)
            except BaseException:
                self._started = False
                await self.close()
                raise
        self._started = True
        self._pool_open = True
        for _ in range(self.config.pool_size):
            self._refill()

    async def warm_up(self) -> None:
        """Start the sandbox if needed and wait until the warm pool is full."""
        await self.start()
        for _ in range(self.config.pool_size):
            self._refill()
        while self._refills:
            await asyncio.gather(*list(self._refills), return_exceptions=True)

    async def close(self) -> None:
        """Kill pooled sandboxes and remove the work directories this object created."""
        self._closed = True
        for task in list(self._refills):  # not cancelled: a spawn cut short leaks a process
            with contextlib.suppress(Exception):
                await task
        while self._pool:
            await self._discard(self._pool.pop())
        for task in list(self._cleanups):
            with contextlib.suppress(Exception):
                await task
        if self._own_root and self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)

    # --- running ------------------------------------------------------------------

    async def run_python(self, code: str, *, limits: SandboxLimits | None = None,
                         workdir: Path | None = None) -> ExecResult:
        """Run Python ``code`` in a sandbox; returns what it printed, its status and files.

        Args:
            code: The program's source.
            limits: Overrides the configured limits for this call.
            workdir: A host directory (from :meth:`workdir_for`) to mount at ``/work``
                so files persist between calls; default: a fresh, empty directory.
        """
        return await self._run("python", code, limits or self.config.limits, workdir)

    async def run_shell(self, command: str, *, limits: SandboxLimits | None = None,
                        workdir: Path | None = None) -> ExecResult:
        """Run a ``/bin/sh -c`` command in a sandbox (only when ``allow_shell``).

        Raises:
            SandboxError: shell commands are not allowed by the configuration.
        """
        if not self.config.allow_shell:
            raise SandboxError("shell commands are not allowed in this sandbox",
                               hint="build the Sandbox with SandboxConfig(allow_shell=True)")
        return await self._run("shell", command, limits or self.config.limits, workdir)

    def workdir_for(self, key: str) -> Path:
        """A persistent work directory named after ``key`` (a run id, say)."""
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", key)[:100] or "_"
        path = self.root / "persist" / safe
        if not path.exists():
            (self.root / "persist").mkdir(exist_ok=True)
            (self.root / "persist").chmod(0o711)
            path.mkdir()
            self._give_to_sandbox_user(path)
        return path

    async def _run(self, kind: Literal["python", "shell"], code: str, limits: SandboxLimits,
                   workdir: Path | None) -> ExecResult:
        if self._closed:
            raise SandboxError("the sandbox was closed")
        if not self._started:
            await self.start()
        if not self.config.unsafe_no_isolation and limits.tmp_mb != self.config.limits.tmp_mb:
            limits = replace(limits, tmp_mb=self.config.limits.tmp_mb)
        if self.config.unsafe_no_isolation:
            logger.warning("UNSAFE: running model-written %s code WITHOUT isolation "
                           "(unsafe_no_isolation=True)", kind)
        since = time.time_ns() if workdir is not None else None
        started = time.perf_counter()
        box = await self._acquire(workdir)
        inside = WORKDIR if box.isolated else str(box.workdir)
        try:
            out, err, killed = await self._feed(box.process, job(kind, code, limits,
                                                                  self.config, inside), limits)
        except BaseException:
            if box.own_workdir:
                self._remove_later(box.workdir)
            raise
        finally:
            if box.process.returncode is None:
                self._kill(box.process)
            await box.process.wait()
            self._refill()  # after the call, so starting the next one does not slow it
        duration = (time.perf_counter() - started) * 1000
        try:
            files, files_cut = collect_files(box.workdir, self.root / "files",
                                             inline_bytes=self.config.inline_file_bytes,
                                             since_ns=since)
        finally:
            if box.own_workdir:
                self._remove_later(box.workdir)
        cap = limits.max_output_bytes
        return ExecResult(
            kind=kind, exit_code=box.process.returncode or 0,
            stdout=out[:cap].decode(errors="replace"), stderr=err[:cap].decode(errors="replace"),
            stdout_truncated=len(out) > cap, stderr_truncated=len(err) > cap,
            duration_ms=duration, killed=killed, files=files, files_truncated=files_cut,
            isolated=box.isolated,
        )

    async def _feed(self, process: asyncio.subprocess.Process, data: bytes,
                    limits: SandboxLimits
                    ) -> tuple[bytes, bytes, Literal["timeout", "output"] | None]:
        """Send the job, collect capped output, enforce the wall clock."""
        assert process.stdin and process.stdout and process.stderr  # noqa: S101 - pipes
        killed: list[Literal["timeout", "output"]] = []
        total = [0]
        keep = limits.max_output_bytes + 1

        async def drain(stream: asyncio.StreamReader) -> bytes:
            kept = bytearray()
            while chunk := await stream.read(_READ_CHUNK):
                total[0] += len(chunk)
                if len(kept) < keep:
                    kept += chunk[: keep - len(kept)]
                if total[0] > limits.kill_output_bytes and not killed:
                    killed.append("output")
                    self._kill(process)
            return bytes(kept)

        readers = asyncio.gather(drain(process.stdout), drain(process.stderr))
        try:
            async with asyncio.timeout(limits.wall_s):
                process.stdin.write(data)
                with contextlib.suppress(ConnectionError):
                    await process.stdin.drain()
                process.stdin.close()
                out, err = await asyncio.shield(readers)
                await process.wait()
        except TimeoutError:
            killed.append("timeout")
            self._kill(process)
            out, err = await self._after_kill(readers)
        except asyncio.CancelledError:
            self._kill(process)
            readers.cancel()
            raise
        return out, err, (killed[0] if killed else None)

    @staticmethod
    async def _after_kill(readers: asyncio.Future[tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
        try:
            async with asyncio.timeout(5):
                out, err = await asyncio.shield(readers)
                return out, err
        except TimeoutError:
            readers.cancel()
            return b"", b""

    # --- the pool -----------------------------------------------------------------

    async def _acquire(self, workdir: Path | None) -> _Started:
        if workdir is None:
            while self._pool:
                box = self._pool.pop(0)
                if box.process.returncode is None:
                    return box
                await self._discard(box)
        return await self._spawn(workdir)

    def _remove_later(self, workdir: Path) -> None:
        """Remove a used work directory off the call's path: right after a sandbox
        exits, removing its mount source can wait on the kernel's mount teardown."""
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(shutil.rmtree, workdir, ignore_errors=True))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    def _refill(self) -> None:
        waiting = len(self._pool) + len(self._refills)
        if not self._pool_open or self._closed or waiting >= self.config.pool_size:
            return

        async def refill() -> None:
            box = await self._spawn(None)
            if self._closed:
                await self._discard(box)
            else:
                self._pool.append(box)

        task = asyncio.get_running_loop().create_task(refill())
        self._refills.add(task)
        task.add_done_callback(self._refills.discard)

    async def _spawn(self, workdir: Path | None) -> _Started:
        own = workdir is None
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="w-", dir=self.root))
            self._give_to_sandbox_user(workdir)
        if self.config.unsafe_no_isolation:
            from ._bwrap import BOOT

            process = await asyncio.create_subprocess_exec(
                self.config.python, "-I", "-S", "-c", BOOT, cwd=workdir,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=dict(SANDBOX_ENV, HOME=str(workdir)),
                start_new_session=True)
            return _Started(process=process, workdir=workdir, own_workdir=own, isolated=False)
        assert self._bwrap is not None  # noqa: S101 - set by start()
        fds: list[int] = []
        try:
            read_fd, write_fd = os.pipe()
            fds.append(read_fd)
            try:
                os.write(write_fd, seccomp_program())
            finally:
                os.close(write_fd)
            flags = os.O_PATH | os.O_CLOEXEC
            fds.append(os.open(workdir, flags | os.O_DIRECTORY | os.O_NOFOLLOW))
            fds += [os.open(mount, flags) for mount in self.config.mounts]
            argv = bwrap_argv(self._bwrap, self.config, seccomp_fd=fds[0], workdir_fd=fds[1],
                              mount_fds=fds[2:])
            as_nobody = os.geteuid() == 0
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, pass_fds=tuple(fds),
                env={"PATH": "/usr/bin:/bin"}, start_new_session=True,
                user=NOBODY if as_nobody else None, group=NOBODY if as_nobody else None,
                extra_groups=[] if as_nobody else None,
            )
        except OSError as e:
            raise SandboxError(f"cannot start bwrap: {e}") from e
        finally:
            for fd in fds:
                os.close(fd)
        return _Started(process=process, workdir=workdir, own_workdir=own, isolated=True)

    async def _discard(self, box: _Started) -> None:
        if box.process.returncode is None:
            self._kill(box.process)
        if box.process.stdin is not None:
            box.process.stdin.close()
        for stream in (box.process.stdout, box.process.stderr):
            if stream is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await stream.read()
        await box.process.wait()
        if box.own_workdir:
            shutil.rmtree(box.workdir, ignore_errors=True)

    @staticmethod
    def _kill(process: asyncio.subprocess.Process) -> None:
        """Kill bwrap; ``--die-with-parent`` then kills the sandbox's PID 1, and with it
        every process of its PID namespace."""
        # Not os.killpg as well: Popen.kill polls first, and reaping a process the
        # group kill already ended hides its status from asyncio's child watcher.
        with contextlib.suppress(ProcessLookupError):
            process.kill()

    def _give_to_sandbox_user(self, path: Path) -> None:
        if os.geteuid() == 0 and not self.config.unsafe_no_isolation:
            os.chown(path, NOBODY, NOBODY)
        path.chmod(0o700)



def _check_reachable(root: Path) -> None:
    """Running as root, sandboxes run as ``nobody``, who must be able to walk to ``root``."""
    if os.geteuid() != 0:
        return
    for parent in [root, *root.parents]:
        if not parent.stat().st_mode & 0o001:
            raise SandboxUnavailableError(
                f"the sandbox root {root} is not reachable by the sandbox's user "
                f"(uid {NOBODY}): {parent} is not searchable by others",
                hint="put SandboxConfig(root=...) under a world-searchable directory such "
                     "as /tmp, or leave it unset",
            )
