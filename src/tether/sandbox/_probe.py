"""The start-up check: a probe run inside a sandbox must fail to reach the host."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import TYPE_CHECKING

from ._errors import SandboxUnavailableError

if TYPE_CHECKING:
    from ._sandbox import Sandbox

_PROBE = """\
import json, os, socket
r = {}
try:
    r["host_file"] = open(CANARY).read()
except OSError:
    r["host_file"] = None
s = socket.socket()
s.settimeout(2)
try:
    s.connect(("127.0.0.1", PORT))
    r["network"] = True
except OSError:
    r["network"] = False
status = open("/proc/self/status").read()
r["seccomp"] = "Seccomp:\\t2" in status
r["caps"] = [l.split()[1] for l in status.splitlines() if l.startswith("CapEff")][0]
r["env"] = sorted(os.environ)
r["uid"] = os.getuid()
try:
    os.listdir("/etc")
    r["etc"] = True
except OSError:
    r["etc"] = False
with open("written", "w") as f:
    f.write("ok")
print(json.dumps(r))
"""


async def check_isolation(sandbox: Sandbox) -> None:
    """Run the probe in a sandbox; raise unless every escape it tries fails.

    The probe tries to read a file this process just wrote on the host, to connect to
    a server this process listens with on 127.0.0.1, and reports its environment,
    capabilities and seccomp mode.

    Raises:
        SandboxUnavailableError: naming what the probe reached or why it could not run.
    """
    connections = 0

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    canary = sandbox.root / f"canary-{secrets.token_hex(8)}"
    token = secrets.token_hex(16)
    canary.write_text(token)
    canary.chmod(0o644)
    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        code = _PROBE.replace("CANARY", repr(str(canary))).replace("PORT", str(port))
        result = await sandbox.run_python(code)
    finally:
        server.close()
        await server.wait_closed()
        canary.unlink(missing_ok=True)
    problems = []
    try:
        report = json.loads(result.stdout)
    except ValueError:
        raise SandboxUnavailableError(
            f"the isolation probe did not run (exit {result.exit_code}): "
            f"{result.stderr.strip()[-500:]}",
            hint="check that bwrap can create namespaces here (user namespaces enabled, "
                 "not inside a container that forbids them)",
        ) from None
    if report["host_file"] is not None or token in result.stdout:
        problems.append("read a host file")
    if report["network"] or connections:
        problems.append("reached a server on the host's 127.0.0.1")
    if not report["seccomp"]:
        problems.append("ran without a seccomp filter")
    if int(report["caps"], 16) != 0:
        problems.append(f"kept capabilities {report['caps']}")
    if report["etc"]:
        problems.append("saw the host's /etc")
    if report["uid"] == 0:
        problems.append("ran as root")
    if not any(f.path == "written" for f in result.files):
        problems.append("could not write its work directory")
    if problems:
        raise SandboxUnavailableError(
            "isolation does not hold on this host: a probe " + ", ".join(problems),
            hint="do not run model-written code here; fix the host (bubblewrap, user "
                 "namespaces, libseccomp) or use another machine",
        )
