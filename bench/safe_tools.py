"""Safe tools figures (issue 20): sandbox latency and guarded HTTP overhead.

- ``sandbox_cold_ms_p50``: ``print(1)`` in a freshly started sandbox (bwrap with every
  namespace unshared, seccomp, rlimits, python3 -I -S), end to end as
  ``Sandbox.run_python`` returns it, no pool. Sequential, N=30.
- ``sandbox_warm_ms_p95``: the same from the warm pool (the pool is full before each
  call, as it is after any pause between calls). N=40.
- ``sandbox_concurrent_ok``: 20 snippets started at once (pool of 2, the rest cold),
  how many printed the right answer.
- ``http_overhead_ms``: ``GuardedHttp.request`` against plain ``httpx.AsyncClient.get``
  to the same loopback server, keep-alive on both: the median of the differences of
  interleaved pairs (which goes first alternates), per request. N=400 pairs. Under
  load this wall-clock figure is noisy, so also ``http_overhead_cpu_ms`` (the client
  process's CPU time per request, guarded minus plain; the server runs in another
  process) and ``http_check_us`` (the checks alone, ``GuardedHttp.check``).
- Context: ``bwrap_true_ms_p50`` (bwrap running /usr/bin/true) and
  ``python_unsandboxed_ms_p50`` (python3 -I -S -c pass, no sandbox).

Prints one JSON object per figure and writes them to bench/results/safe_tools.jsonl.
Run with no arguments (as root or a user allowed to create user namespaces); it takes
about a minute. Each figure records the machine's 1-minute load average: on a shared
2-core machine, latency percentiles measure the scheduler as much as the sandbox.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, write_results  # noqa: E402

from tether.net import GuardedHttp, HttpPolicy  # noqa: E402
from tether.sandbox import Sandbox, SandboxConfig  # noqa: E402

N_COLD = 30
N_WARM = 40
N_CONCURRENT = 20
N_HTTP = 400
N_CHECK = 5000


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def spawn_ms(argv: list[str], n: int = 20) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(argv, check=True, env={})
        times.append((time.perf_counter() - start) * 1000)
    return times


async def sandbox_figures() -> list[dict[str, Any]]:
    lines = []
    config = {"machine_cores": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 1)}
    bwrap = shutil.which("bwrap") or "bwrap"
    true_ms = spawn_ms([bwrap, "--unshare-all", "--ro-bind", "/usr", "/usr", "--symlink",
                        "usr/lib64", "/lib64", "--symlink", "usr/lib", "/lib",
                        "/usr/bin/true"])
    lines.append(emit("bwrap_true_ms_p50", statistics.median(true_ms), "ms", **config))
    py_ms = spawn_ms(["/usr/bin/python3", "-I", "-S", "-c",
                      "pass"])
    lines.append(emit("python_unsandboxed_ms_p50", statistics.median(py_ms), "ms", **config))

    async with Sandbox(SandboxConfig(pool_size=0)) as cold:
        times = []
        for _ in range(N_COLD):
            start = time.perf_counter()
            result = await cold.run_python("print(1)")
            times.append((time.perf_counter() - start) * 1000)
            assert result.stdout == "1\n", result
    lines.append(emit("sandbox_cold_ms_p50", statistics.median(times), "ms", n=N_COLD,
                      p95=round(p(times, 0.95), 2), **config))

    async with Sandbox(SandboxConfig(pool_size=2)) as warm:
        times = []
        for _ in range(N_WARM):
            await warm.warm_up()  # the pool is full, as after any pause between calls
            start = time.perf_counter()
            result = await warm.run_python("print(1)")
            times.append((time.perf_counter() - start) * 1000)
            assert result.stdout == "1\n", result
        lines.append(emit("sandbox_warm_ms_p95", p(times, 0.95), "ms", n=N_WARM,
                          p50=round(statistics.median(times), 2), pool_size=2, **config))

        await warm.warm_up()
        start = time.perf_counter()
        results = await asyncio.gather(*(warm.run_python(f"print({i} * {i})")
                                         for i in range(N_CONCURRENT)))
        wall = (time.perf_counter() - start) * 1000
        ok = sum(r.exit_code == 0 and r.stdout == f"{i * i}\n" for i, r in enumerate(results))
        lines.append(emit("sandbox_concurrent_ok", ok, "snippets", n=N_CONCURRENT,
                          wall_ms=round(wall, 1), **config))
    return lines


# The server runs in its own process: in this one, its thread would fight the client
# for the GIL and add up to the switch interval (5 ms) to random requests.
SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        # One write per response: a header and a body written apart meet Nagle's
        # algorithm and delayed ACKs.
        body = b'{"ok": true}'
        self.wfile.write(b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\n"
                         b"Content-Length: %d\\r\\n\\r\\n%s" % (len(body), body))

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE)
    assert server.stdout is not None
    return server, f"http://127.0.0.1:{int(server.stdout.readline())}/x"


async def http_figures() -> list[dict[str, Any]]:
    server, url = start_server()
    diffs, plain_ms, guarded_ms = [], [], []
    policy = HttpPolicy(allowed_networks=("127.0.0.1/32",))
    try:
        async with httpx.AsyncClient(trust_env=False) as plain, GuardedHttp(policy) as guarded:
            for _ in range(20):  # warm up both connections
                await plain.get(url)
                await guarded.request("GET", url)
            for i in range(N_HTTP):
                pair = {}
                for which in (("plain", "guarded") if i % 2 else ("guarded", "plain")):
                    start = time.perf_counter()
                    if which == "plain":
                        (await plain.get(url)).json()
                    else:
                        await guarded.request("GET", url)
                    pair[which] = (time.perf_counter() - start) * 1000
                plain_ms.append(pair["plain"])
                guarded_ms.append(pair["guarded"])
                diffs.append(pair["guarded"] - pair["plain"])
            # CPU time of this process (the server runs in another one): what the
            # guard adds, without the scheduler's noise of a loaded machine.
            cpu = {"plain": 0.0, "guarded": 0.0}
            for block in range(N_HTTP // 50):
                for which in (("plain", "guarded") if block % 2 else ("guarded", "plain")):
                    start = time.process_time()
                    for _ in range(50):
                        if which == "plain":
                            (await plain.get(url)).json()
                        else:
                            await guarded.request("GET", url)
                    cpu[which] += time.process_time() - start
            cpu_overhead_ms = (cpu["guarded"] - cpu["plain"]) / (N_HTTP // 50 * 50) * 1000
            start = time.perf_counter()
            for _ in range(N_CHECK):
                await guarded.check(url)
            check_us = (time.perf_counter() - start) / N_CHECK * 1e6
    finally:
        server.kill()
        server.wait()
    q1, _, q3 = statistics.quantiles(diffs, n=4)
    load = round(os.getloadavg()[0], 1)
    return [emit("http_overhead_ms", statistics.median(diffs), "ms", n=N_HTTP,
                 plain_ms_p50=round(statistics.median(plain_ms), 3),
                 guarded_ms_p50=round(statistics.median(guarded_ms), 3),
                 iqr_ms=round(q3 - q1, 3), target="127.0.0.1 keep-alive", load_avg_1m=load),
            emit("http_overhead_cpu_ms", cpu_overhead_ms, "ms", n=N_HTTP // 50 * 50,
                 what="client process CPU time per request, guarded minus plain",
                 load_avg_1m=load),
            emit("http_check_us", check_us, "us", n=N_CHECK, load_avg_1m=load,
                 what="parse, allowlist and classify one URL (an IP literal: no resolver)")]


async def main() -> None:
    lines = await sandbox_figures()
    lines += await http_figures()
    write_results(__file__, lines)


if __name__ == "__main__":
    asyncio.run(main())
