"""Escapes tried from inside the sandbox; every one must be contained.

Each test runs hostile code in a real bubblewrap sandbox and checks, from the host,
that it reached nothing: no host file read or written, no connection to a server the
test runs on 127.0.0.1, no process left behind, no secret of the host's environment.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from tether.sandbox import Sandbox, SandboxLimits

from .conftest import (
    Listener,
    leftover_workdirs,
    requires_bwrap,
    sandbox_user_pids,
    wait_until_gone,
)

pytestmark = requires_bwrap
ROOT = Path(__file__).resolve().parents[2]


def tree(path: Path) -> list[Path]:
    return sorted(path.rglob("*"))


def exists(path: str) -> bool:
    return Path(path).exists()


def sibling_files(root: Path) -> list[str]:
    return [str(p) for p in root.glob("w-*/secret.txt")]


async def test_host_files_cannot_be_read(sandbox: Sandbox, host_secret: tuple[Path, str]) -> None:
    path, token = host_secret
    project = ROOT / "pyproject.toml"
    code = f"""
import os
for p in [{str(path)!r}, {str(project)!r}, "/etc/shadow", "/etc/passwd", "/root/.bashrc",
          "/proc/1/root/etc/shadow", "/proc/self/root/etc/shadow", "../etc/shadow",
          "/work/../../etc/shadow", "/usr/../etc/shadow"]:
    try:
        print(p, "READ", open(p).read()[:200])
    except OSError as e:
        print(p, "refused", type(e).__name__)
"""
    result = await sandbox.run_python(code)
    assert result.exit_code == 0, result.stderr
    assert "READ" not in result.stdout and token not in result.stdout
    assert result.stdout.count("refused") == 10


async def test_writes_outside_the_work_directory_fail(sandbox: Sandbox, tmp_path: Path) -> None:
    before = tree(tmp_path)
    code = f"""
import os
for p in ["/usr/evil", "/evil", "/proc/evil", {str(tmp_path / "evil")!r}, "/work/../evil",
          "/dev/evil", "/etc/evil", "/proc/sys/kernel/hostname", "/sys/evil"]:
    try:
        open(p, "w").write("x"); print(p, "WROTE")
    except OSError as e:
        print(p, "refused", type(e).__name__)
"""
    result = await sandbox.run_python(code)
    assert "WROTE" not in result.stdout, result.stdout
    assert result.stdout.count("refused") == 9
    assert not exists("/usr/evil") and not exists("/evil")
    assert tree(tmp_path) == before


async def test_symlinks_and_dotdot_reach_nothing(
    sandbox: Sandbox, host_secret: tuple[Path, str]
) -> None:
    path, token = host_secret
    code = f"""
import os
os.symlink({str(path)!r}, "host-link")
os.symlink("/etc/shadow", "shadow-link")
os.symlink("../../../../../../{str(path).lstrip("/")}", "dotdot-link")
os.mkdir("d"); os.symlink("/", "d/rootlink")
for p in ["host-link", "shadow-link", "dotdot-link", "d/rootlink/etc/shadow"]:
    try:
        print(p, "READ", open(p).read())
    except OSError as e:
        print(p, "refused", type(e).__name__)
"""
    result = await sandbox.run_python(code)
    assert "READ" not in result.stdout and token not in result.stdout
    # The host collects the files the code left without following its links.
    assert result.files == ()
    payload = json.dumps([f.__dict__ for f in result.files])
    assert token not in payload


async def test_links_planted_in_a_persistent_directory_are_not_followed(
    sandbox: Sandbox, host_secret: tuple[Path, str]
) -> None:
    path, token = host_secret
    workdir = sandbox.workdir_for("run-1")
    first = await sandbox.run_python(
        f"import os; os.symlink({str(path)!r}, 'later.txt'); open('real.txt','w').write('ok')",
        workdir=workdir)
    assert [f.path for f in first.files] == ["real.txt"]
    second = await sandbox.run_python("print(open('real.txt').read())", workdir=workdir)
    assert second.stdout == "ok\n"
    assert token not in json.dumps([f.__dict__ for f in second.files])


async def test_no_connection_reaches_the_hosts_loopback(
    sandbox: Sandbox, listener: Listener
) -> None:
    code = f"""
import socket
for family, host in [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET, "localhost"),
                     (socket.AF_INET6, "::1"), (socket.AF_INET6, "::ffff:127.0.0.1")]:
    try:
        s = socket.socket(family); s.settimeout(2); s.connect((host, {listener.port}))
        print(host, "CONNECTED")
    except OSError as e:
        print(host, "refused", type(e).__name__)
"""
    result = await sandbox.run_python(code)
    assert "CONNECTED" not in result.stdout, result.stdout
    await asyncio.sleep(0.2)
    assert listener.connections == []


async def test_a_fork_bomb_is_contained(bare: Sandbox) -> None:
    before = sandbox_user_pids()
    limits = SandboxLimits(wall_s=3, processes=32, cpu_s=5)
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = await bare.run_python(code, limits=limits)
    assert result.killed == "timeout" or result.exit_code != 0
    assert not await wait_until_gone(before), "forked processes survived the sandbox"
    # The host still forks.
    proc = await asyncio.create_subprocess_exec("/bin/true")
    assert await proc.wait() == 0


async def test_in_memory_file_systems_are_capped(sandbox: Sandbox) -> None:
    code = """
for p in ["/tmp/fill", "/dev/shm/fill"]:
    try:
        with open(p, "wb") as f:
            for _ in range(200):
                f.write(bytes(1 << 20))
        print(p, "FILLED 200 MiB")
    except OSError as e:
        print(p, "capped", e.errno)
"""
    result = await sandbox.run_python(code, limits=SandboxLimits(file_size_mb=512))
    assert "FILLED" not in result.stdout and result.stdout.count("capped") == 2


async def test_a_memory_bomb_is_contained(sandbox: Sandbox) -> None:
    limits = SandboxLimits(memory_mb=256, wall_s=10)
    result = await sandbox.run_python(
        "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))", limits=limits)
    assert result.exit_code != 0
    assert "MemoryError" in result.stderr


async def test_an_infinite_loop_is_killed_by_the_wall_clock(bare: Sandbox) -> None:
    before = sandbox_user_pids()
    result = await bare.run_python("while True:\n    pass",
                                   limits=SandboxLimits(wall_s=1, cpu_s=30))
    assert result.killed == "timeout" and result.exit_code != 0
    assert not await wait_until_gone(before)


async def test_cpu_time_is_limited(sandbox: Sandbox) -> None:
    result = await sandbox.run_python("while True:\n    pass",
                                      limits=SandboxLimits(wall_s=30, cpu_s=1))
    assert result.killed is None and result.exit_code == 128 + 9  # killed by RLIMIT_CPU


async def test_megabytes_of_output_are_capped(sandbox: Sandbox) -> None:
    limits = SandboxLimits(max_output_bytes=10_000, kill_output_bytes=4_000_000, wall_s=20)
    result = await sandbox.run_python(
        "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", limits=limits)
    assert result.killed == "output"
    assert result.stdout_truncated and len(result.stdout) == 10_000
    small = await sandbox.run_python("print('y' * 50_000)", limits=limits)
    assert small.killed is None and small.stdout_truncated and len(small.stdout) == 10_000


async def test_other_processes_and_the_host_environment_are_invisible(
    sandbox_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "ENVSECRET-" + os.urandom(8).hex()
    monkeypatch.setenv("TETHER_TEST_PLANTED_SECRET", secret)
    code = """
import os
seen = []
pids = [p for p in os.listdir("/proc") if p.isdigit()]
for p in pids:
    for name in ("environ", "cmdline"):
        try:
            seen.append(open(f"/proc/{p}/{name}", "rb").read().decode(errors="replace"))
        except OSError as e:
            seen.append(type(e).__name__)
print(len(pids), repr(os.environ), seen)
"""
    from tether.sandbox import SandboxConfig

    async with Sandbox(SandboxConfig(pool_size=0, root=sandbox_root)) as box:
        result = await box.run_python(code)
    assert secret not in result.stdout and secret not in result.stderr
    assert "TETHER_TEST_PLANTED_SECRET" not in result.stdout
    assert int(result.stdout.split()[0]) <= 3  # bwrap's init, the code, nothing of the host's


async def test_ctypes_and_class_hierarchy_walks_reach_nothing(
    sandbox: Sandbox, listener: Listener, host_secret: tuple[Path, str]
) -> None:
    path, token = host_secret
    code = f"""
import ctypes, errno
popen = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == "Popen"]
if not popen:
    import subprocess
    popen = [subprocess.Popen]
for cmd in (["cat", {str(path)!r}], ["cat", "/etc/shadow"], ["ls", "/root"]):
    try:
        p = popen[0](cmd, stdout=-1, stderr=-1)
        out, err = p.communicate()
        print("popen", cmd, p.returncode, out[:100], err[:100])
    except OSError as e:
        print("popen", cmd, "refused", type(e).__name__)
libc = ctypes.CDLL(None, use_errno=True)
print("unshare", libc.unshare(0x10000000), ctypes.get_errno())   # CLONE_NEWUSER
print("unshare-net", libc.unshare(0x40000000), ctypes.get_errno())
print("mount", libc.mount(b"none", b"/work", b"tmpfs", 0, None), ctypes.get_errno())
print("ptrace", libc.ptrace(16, 1, 0, 0), ctypes.get_errno())   # PTRACE_ATTACH to pid 1
print("netlink", libc.socket(16, 3, 0), ctypes.get_errno())      # AF_NETLINK
print("packet", libc.socket(17, 3, 0), ctypes.get_errno())       # AF_PACKET
fd = libc.socket(2, 1, 0)
class sockaddr_in(ctypes.Structure):
    _fields_ = [("family", ctypes.c_ushort), ("port", ctypes.c_ushort),
                ("addr", ctypes.c_uint32), ("zero", ctypes.c_char * 8)]
addr = sockaddr_in(2, ({listener.port} >> 8) | (({listener.port} & 0xff) << 8), 0x0100007f)
print("connect", libc.connect(fd, ctypes.byref(addr), ctypes.sizeof(addr)), ctypes.get_errno())
"""
    result = await sandbox.run_python(code)
    assert result.exit_code == 0, result.stderr
    assert token not in result.stdout
    lines = {line.split()[0] + (line.split()[1] if line.startswith("popen") else ""): line
             for line in result.stdout.splitlines()}
    for name in ("unshare", "unshare-net", "mount", "ptrace", "netlink", "packet", "connect"):
        assert lines[name].split()[1] == "-1", lines[name]
    await asyncio.sleep(0.2)
    assert listener.connections == []


async def test_concurrent_sandboxes_cannot_see_each_other(sandbox: Sandbox) -> None:
    token = "SIBLING-" + os.urandom(8).hex()
    writer = asyncio.ensure_future(sandbox.run_python(
        f"import time\nopen('secret.txt', 'w').write({token!r})\n"
        "open('/tmp/secret.txt', 'w').write(" + repr(token) + ")\ntime.sleep(4)"))
    try:
        for _ in range(100):  # wait until the sibling has written its file
            if sibling_files(sandbox.root):
                break
            await asyncio.sleep(0.05)
        host_paths = sibling_files(sandbox.root)
        assert host_paths
        code = f"""
import os
hits = []
tops = ["/work", "/tmp", "/dev/shm", "/run", "/var", "/home", "/root", "/mnt"]
tops += [f"/proc/{{p}}/cwd" for p in os.listdir("/proc") if p.isdigit()]
for top in tops:
    for dirpath, dirs, files in os.walk(top):
        for f in files:
            try:
                with open(os.path.join(dirpath, f), "rb") as h:
                    if {token.encode()!r} in h.read(1 << 16):
                        hits.append(os.path.join(dirpath, f))
            except OSError:
                pass
for p in {host_paths!r}:
    try:
        open(p).read(); hits.append(p)
    except OSError:
        pass
print("hits", hits)
"""
        result = await sandbox.run_python(code)
        assert result.stdout.startswith("hits []"), result.stdout + result.stderr
    finally:
        await writer


async def test_a_pooled_sandbox_is_used_once(sandbox: Sandbox) -> None:
    await sandbox.run_python("open('left.txt','w').write('x'); open('/tmp/left','w').write('x')")
    await sandbox.warm_up()  # the next call takes a pooled sandbox
    result = await sandbox.run_python(
        "import os; print(os.listdir('.'), os.path.exists('/tmp/left'))")
    assert result.stdout == "[] False\n"


async def test_cancelling_a_call_kills_its_sandbox(bare: Sandbox) -> None:
    before = sandbox_user_pids()
    # A fork refused by the process limit (shared by every sandbox of this user on
    # the machine) must not end the call early: it is the cancellation under test.
    task = asyncio.ensure_future(bare.run_python(
        "import os, time\nfor _ in range(5):\n    try:\n        os.fork()\n"
        "    except OSError:\n        pass\ntime.sleep(60)"))
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await wait_until_gone(before), "a cancelled call left processes running"
    await bare.close()
    assert not leftover_workdirs(bare.root)


async def test_no_host_descriptor_leaks_into_the_sandbox(sandbox_root: Path) -> None:
    # The work directory and mounts reach bwrap as descriptors; an O_PATH descriptor
    # left open inside would lead back to the host (openat(fd, "..")).
    from tether.sandbox import SandboxConfig

    code = "import os\nprint(sorted(int(fd) for fd in os.listdir('/proc/self/fd')))"
    async with Sandbox(SandboxConfig(pool_size=1, root=sandbox_root,
                                     mounts=("/usr/share",))) as box:
        cold = await box.run_python(code)
        await box.warm_up()
        warm = await box.run_python(code)
    # 0-2 and the descriptor listdir itself opens.
    assert cold.stdout == warm.stdout == "[0, 1, 2, 3]\n", cold.stdout + warm.stdout
