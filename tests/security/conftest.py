from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tether.sandbox import Sandbox, SandboxConfig, SandboxLimits

NOBODY = 65534
requires_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None,
    reason="bubblewrap (bwrap) is not installed: `apt-get install bubblewrap` "
           "(`make test` installs it when run as root)",
)


def sandbox_user_pids() -> set[int]:
    """PIDs of processes of the user sandboxes run as (when the tests run as root)."""
    if os.geteuid() != 0:
        return set()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        if int(uid_line.split()[1]) == NOBODY:
            found.add(int(entry.name))
    return found


async def wait_until_gone(pids_before: set[int]) -> set[int]:
    """Sandbox processes not there before, after giving the kernel 10 s to reap them."""
    for _ in range(100):
        left = sandbox_user_pids() - pids_before
        if not left:
            return left
        await asyncio.sleep(0.1)
    return sandbox_user_pids() - pids_before


@dataclass
class Listener:
    """A TCP server on 127.0.0.1 that records every connection it gets."""

    port: int = 0
    connections: list[str] = field(default_factory=list)


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    record = Listener()

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        record.connections.append(str(writer.get_extra_info("peername")))
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    record.port = server.sockets[0].getsockname()[1]
    yield record
    server.close()
    await server.wait_closed()


@pytest.fixture
def host_secret(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A host file holding a token no sandbox may ever print."""
    token = "HOSTSECRET-" + os.urandom(8).hex()
    path = tmp_path / "host-secret.txt"
    path.write_text(token)
    path.chmod(0o644)
    yield path, token


def leftover_workdirs(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.name.startswith("w-")]


@pytest.fixture
def sandbox_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="tether-test-sandbox-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


LIMITS = SandboxLimits(wall_s=20, cpu_s=10, memory_mb=512, processes=32)


@pytest.fixture
async def sandbox(sandbox_root: Path) -> AsyncIterator[Sandbox]:
    before = sandbox_user_pids()
    box = Sandbox(SandboxConfig(pool_size=1, limits=LIMITS, allow_shell=True,
                                root=sandbox_root))
    await box.start()
    yield box
    await box.close()
    assert not await wait_until_gone(before), "sandbox processes outlived the sandbox"
    assert not leftover_workdirs(sandbox_root), "per-call work directories were left behind"


@pytest.fixture
async def bare(sandbox_root: Path) -> AsyncIterator[Sandbox]:
    """A sandbox without a warm pool: every sandbox process seen is one a call started."""
    box = Sandbox(SandboxConfig(pool_size=0, limits=LIMITS, root=sandbox_root))
    await box.start()
    yield box
    await box.close()
