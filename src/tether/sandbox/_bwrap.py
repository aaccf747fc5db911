"""The ``bwrap`` command line of a sandbox and the boot code that runs inside it."""

from __future__ import annotations

import marshal
import os
from pathlib import Path
from typing import Literal

from ._config import MiB, SandboxConfig, SandboxLimits

#: Where the work directory appears inside the sandbox.
WORKDIR = "/work"
#: The only environment the sandboxed code sees.
SANDBOX_ENV: dict[str, str] = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": WORKDIR,
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    "PYTHONDONTWRITEBYTECODE": "1",
}
#: The unprivileged user sandboxes run as when Tether runs as root.
NOBODY = 65534

# Runs first inside the sandbox (trusted): waits for the job on stdin, sets the hard
# resource limits, detaches stdin, then runs the code in a fresh namespace and exits
# as Python would (threads joined, atexit run, streams flushed, the same status). A
# pooled sandbox sits in the ``read`` until it is used.
BOOT = """\
import sys, os, marshal, resource
j = marshal.loads(sys.stdin.buffer.read())
for n, v in j[2]:
    resource.setrlimit(getattr(resource, n), (v, v))
f = os.open("/dev/null", os.O_RDONLY); os.dup2(f, 0); os.close(f)
os.chdir(j[4])
if j[0] == "shell":
    os.execv("/bin/sh", ["sh", "-c", j[1]])
sys.path[:0] = j[3]
sys.argv = ["<sandbox>"]
c = compile(j[1], "<sandbox>", "exec")
del j, f, n, v
try:
    exec(c, {"__name__": "__main__", "__builtins__": __builtins__})
    s = 0
except SystemExit as e:
    s = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    if not isinstance(e.code, int | None):
        print(e.code, file=sys.stderr)
except BaseException:
    import traceback
    traceback.print_exc()
    s = 1
# Exit as the interpreter would, without its slow teardown of every module.
if "threading" in sys.modules:
    sys.modules["threading"]._shutdown()
import atexit
atexit._run_exitfuncs()
for o in (sys.stdout, sys.stderr):
    try:
        o.flush()
    except Exception:
        pass
os._exit(s & 0xFF)
"""


def rlimits(limits: SandboxLimits) -> list[tuple[str, int]]:
    return [
        ("RLIMIT_CPU", max(1, int(limits.cpu_s))),
        ("RLIMIT_AS", limits.memory_mb * MiB),
        ("RLIMIT_NPROC", limits.processes),
        ("RLIMIT_FSIZE", limits.file_size_mb * MiB),
        ("RLIMIT_NOFILE", limits.open_files),
        ("RLIMIT_CORE", 0),
    ]


def job(kind: Literal["python", "shell"], code: str, limits: SandboxLimits,
        config: SandboxConfig, workdir: str) -> bytes:
    """The bytes written to a sandbox's stdin to start ``code``."""
    return marshal.dumps((kind, code, rlimits(limits), list(config.python_path), workdir))


def _usr_links() -> list[str]:
    args: list[str] = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), f"/{name}"]
        elif path.is_dir():
            args += ["--ro-bind", str(path), f"/{name}"]
    return args


def bwrap_argv(bwrap: str, config: SandboxConfig, *, workdir_fd: int, mount_fds: list[int],
               seccomp_fd: int) -> list[str]:
    """Every namespace unshared, ``/usr`` read-only, the work directory at ``/work``,
    ``config.mounts`` read-only, nothing else.

    Directories are passed as descriptors this process opened, so the sandbox's user
    needs no right to walk the host path that leads to them.
    """
    argv = [
        bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
        "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox",
        "--ro-bind", "/usr", "/usr", *_usr_links(),
    ]
    for mount, fd in zip(config.mounts, mount_fds, strict=True):
        argv += ["--ro-bind-fd", str(fd), mount]
    argv += [
        "--proc", "/proc", "--dev", "/dev",
        "--size", str(config.limits.tmp_mb * MiB), "--tmpfs", "/dev/shm",
        "--remount-ro", "/dev",  # its tmpfs would be writable and unbounded
        "--size", str(config.limits.tmp_mb * MiB), "--tmpfs", "/tmp",
        "--bind-fd", str(workdir_fd), WORKDIR, "--remount-ro", "/",
        "--chdir", WORKDIR, "--clearenv",
    ]
    for key, value in SANDBOX_ENV.items():
        argv += ["--setenv", key, value]
    argv += ["--seccomp", str(seccomp_fd), "--", config.python, "-I", "-S", "-c", BOOT]
    return argv
