"""Who drives a run: this process's owner id, and whether another owner is dead.

A run is driven under a lease (see ``Store.acquire``): the first commit of a
:class:`~tether.runtime._execution.Journal` takes it, every later commit is fenced by
its token, a heartbeat renews it between commits, and it is released when the drive
ends. A lease whose owner died lapses after its ``ttl_s``; an owner on this host that
no longer exists is known dead at once, so a crashed run can be resumed immediately.
An owner is one driver (not one process), and "this host" is one boot and one pid
namespace; a live owner here is never taken over, even once its lease lapsed.
"""

from __future__ import annotations

import os
import secrets
import socket
from functools import cache


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), None if it is gone
    or a zombie; ``"?"`` where /proc is not there to ask."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except FileNotFoundError:
        return None
    except OSError:
        return "?"
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):  # killed, not yet reaped: dead all the same
        return None
    return fields[19]


@cache
def _host() -> str:
    """This host *and pid namespace*: ``name/boot/pidns``. Containers of one host may
    share its name (``--network host``, a Kubernetes pod) but not its pids, and a pid
    only names a process within its namespace and boot."""
    parts = [socket.gethostname()]
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            parts.append(f.read().strip()[:8])
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        pass
    return "/".join(parts)


def owner_id() -> str:
    """``host:pid:start:nonce`` (host: name, boot, pid namespace): a new owner for
    each driver, so two drivers in one process (two resumes of one run by one service)
    exclude each other as two processes do; unique even when the pid is reused later."""
    pid = os.getpid()
    return f"{_host()}:{pid}:{_start_time(pid) or '?'}:{secrets.token_hex(6)}"


def owner_dead(owner: str) -> bool:
    """Whether ``owner`` (an :func:`owner_id`) is a process of this host that no longer
    exists. Owners on other hosts, or not in this form, are never known dead here."""
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    start = start.partition(":")[0]  # without the driver's nonce
    if host != _host() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    now = _start_time(pid)
    if now == "?":  # no /proc: ask the kernel whether the pid exists at all
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return now is None or (start not in ("", "?") and now != start)


def owner_alive_here(owner: str) -> bool:
    """Whether ``owner`` is a process of this host that still exists (stopped with
    Ctrl-Z or stalled, perhaps, but alive: its lease lapsing proves nothing)."""
    host, _, rest = owner.partition(":")
    return host == _host() and rest.partition(":")[0].isdigit() and not owner_dead(owner)
