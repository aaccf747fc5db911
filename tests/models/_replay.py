"""A tiny HTTP server on 127.0.0.1 that replays recorded provider responses.

The SDKs under test talk to it through their real HTTP stack (``base_url``); it records
what they sent so tests can compare request bodies with the recordings.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RECORDINGS = Path(__file__).parent / "recordings"


@dataclass
class Reply:
    """One recorded response: status, headers and the exact body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes
    #: The request body the recording was made with, when the recording has one.
    request: dict[str, Any] | None = None


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def load(name: str) -> Reply:
    """Load ``recordings/NAME.json`` (a ``body`` object, or a ``body_file`` of raw bytes)."""
    spec = json.loads((RECORDINGS / f"{name}.json").read_text())
    response = spec["response"]
    if "body_file" in response:
        body = (RECORDINGS / Path(name).parent / response["body_file"]).read_bytes()
    else:
        body = json.dumps(response["body"]).encode()
    return Reply(
        status=response["status"],
        headers=response.get("headers", {}),
        body=body,
        request=spec.get("request"),
    )


@dataclass
class ReplayServer:
    """Serves queued replies in order and records every request."""

    replies: list[Reply] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def queue(self, *names: str) -> list[Reply]:
        loaded = [load(n) for n in names]
        self.replies.extend(loaded)
        return loaded

    def start(self) -> None:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                replay.received.append(
                    Received(
                        method="POST",
                        path=self.path,
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=json.loads(raw) if raw else {},
                    )
                )
                if not replay.replies:
                    self.send_error(500, "no recorded reply left")
                    return
                reply = replay.replies.pop(0)
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                if not any(k.lower() == "content-type" for k in reply.headers):
                    self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
