"""Real HTTP servers on loopback addresses that record every request they get."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


#: route(handler_request) -> (status, headers, body)
Route = Callable[[Seen], tuple[int, dict[str, str], bytes]]


@dataclass
class Recorder:
    host: str
    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    connections: int = 0

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"


def echo(seen: Seen) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"method": seen.method, "path": seen.path, "headers": seen.headers,
                       "body": seen.body.decode(errors="replace")}).encode()
    return 200, {"Content-Type": "application/json"}, body


@contextmanager
def serve(host: str, route: Route = echo, *, tls: ssl.SSLContext | None = None
          ) -> Iterator[Recorder]:
    """A threaded HTTP(S) server on ``host`` (a loopback address) and a random port."""
    if not host.startswith("127."):
        raise ValueError("test servers listen on loopback only")
    record = Recorder(host=host)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            record.connections += 1
            super().setup()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                        self.rfile.read(length) if length else b"")
            record.requests.append(seen)
            status, headers, body = route(seen)
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    record.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield record
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
