"""The seccomp filter loaded into every sandbox (``bwrap --seccomp FD``).

Built with libseccomp (the library Docker, systemd and Flatpak use) through
``pyseccomp``'s ctypes binding, so syscall names resolve per architecture and
libseccomp handles the architecture check and the x32 ABI. The filter allows by
default and refuses (``EPERM``) the kernel surfaces sandboxed code has no use for and
container escapes go through: namespaces and mounts, ``ptrace`` and cross-process
memory access, kernel modules, BPF, ``perf_event_open``, ``userfaultfd``, keyrings,
``io_uring``, file handles, and sockets of families other than Unix and IP (the IP
ones reach only the sandbox's own, empty network namespace). ``clone3`` gets
``ENOSYS`` (its flags sit behind a pointer a filter cannot read), so libc falls back
to ``clone``, whose namespace flags are refused.
"""

from __future__ import annotations

import errno
import functools
import tempfile

from ._errors import SandboxUnavailableError

#: Refused outright with EPERM.
DENIED_SYSCALLS: tuple[str, ...] = (
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "bpf", "perf_event_open", "userfaultfd", "add_key", "request_key", "keyctl",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "open_by_handle_at", "name_to_handle_at", "acct", "quotactl", "swapon", "swapoff",
    "reboot", "syslog", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "iopl", "ioperm", "lookup_dcookie", "uselib", "fanotify_init", "vhangup",
    "migrate_pages", "move_pages", "mbind", "set_mempolicy",
)
#: Socket families allowed (AF_UNIX, AF_INET, AF_INET6); any other is refused.
ALLOWED_SOCKET_FAMILIES: tuple[int, ...] = (1, 2, 10)
_NAMESPACE_FLAGS = 0x10000000 | 0x20000000 | 0x40000000 | 0x04000000 | 0x08000000 \
    | 0x00020000 | 0x02000000  # NEWUSER|NEWPID|NEWNET|NEWUTS|NEWIPC|NEWNS|NEWCGROUP


@functools.cache
def seccomp_program() -> bytes:
    """The compiled BPF program (cached for the process's life).

    Raises:
        SandboxUnavailableError: libseccomp or its binding is missing.
    """
    try:
        import pyseccomp as sc
    except (ImportError, OSError) as e:  # OSError: libseccomp.so.2 itself is missing
        raise SandboxUnavailableError(
            f"cannot build the sandbox's seccomp filter: {e}",
            hint="install libseccomp2 (apt-get install libseccomp2) and the pyseccomp "
                 "package (pip install pyseccomp)",
        ) from e
    f = sc.SyscallFilter(sc.ALLOW)
    deny = sc.ERRNO(errno.EPERM)
    for name in DENIED_SYSCALLS:
        try:
            f.add_rule(deny, name)
        except (OSError, ValueError, RuntimeError):  # not a syscall on this arch
            continue
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    for bit in range(32):
        flag = 1 << bit
        if _NAMESPACE_FLAGS & flag:
            f.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    # socket(domain, ...): refuse every family but the allowed ones (AF_MAX < 64).
    for family in range(64):
        if family not in ALLOWED_SOCKET_FAMILIES:
            f.add_rule(deny, "socket", sc.Arg(0, sc.EQ, family))
    f.add_rule(deny, "socket", sc.Arg(0, sc.GE, 64))
    with tempfile.TemporaryFile() as out:
        f.export_bpf(out)
        out.seek(0)
        return out.read()
