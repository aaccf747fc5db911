"""Run llama-cpp-python's OpenAI-compatible server with Tether's safe loading.

``python -m tether.models._llama_server ARGS`` is ``python -m llama_cpp.server ARGS``
except that models load without llama.cpp's extra buffer types unless
``TETHER_LLAMA_EXTRA_BUFFERS=1`` (see :func:`._local.without_extra_buffers`: on
machines that advertise AMX without enabling it, the stock server dies on its first
batched prompt). :func:`running_server` starts one in a child process; Tether's tests
and benchmarks use it. Needs ``tether[server]``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence

import httpx

from ..core import ConfigurationError
from ._local import extra_buffers_allowed, without_extra_buffers


def main() -> None:
    """Parse the server's own command line and serve until interrupted."""
    from llama_cpp.server.__main__ import main as serve

    with without_extra_buffers(not extra_buffers_allowed()):
        serve()  # type: ignore[no-untyped-call]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_server(
    model: str | os.PathLike[str],
    *,
    port: int | None = None,
    args: Sequence[str] = (),
    ready_timeout_s: float = 120.0,
) -> Iterator[str]:
    """Serve ``model`` on 127.0.0.1 in a child process; yield its ``/v1`` base URL.

    The server is stopped when the block exits.

    Raises:
        ConfigurationError: the server exited or did not answer in time (its log tail
            is in the message).
    """
    host = "127.0.0.1"
    port = port or free_port(host)
    command = [
        sys.executable, "-m", "tether.models._llama_server",
        "--model", str(model), "--host", host, "--port", str(port), *args,
    ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            base_url = f"http://{host}:{port}/v1"
            deadline = time.monotonic() + ready_timeout_s
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read()[-2000:].decode(errors="replace")
                    raise ConfigurationError(
                        f"llama.cpp server on port {port} did not start: {tail}",
                        hint='pip install "tether[server]"',
                    )
                try:
                    if httpx.get(f"{base_url}/models", timeout=1.0).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


if __name__ == "__main__":
    main()
