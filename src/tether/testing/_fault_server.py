"""A real OpenAI-compatible HTTP server with programmable faults, for tests and benchmarks.

It speaks the Chat Completions protocol on 127.0.0.1 and answers like a scripted model:
by default it calls the tool ``lookup(i=k)`` while fewer than ``steps`` tool results
are in the conversation, then answers. Each request first takes the next fault of its
plan (or of ``fault_for``), so a test can say "the 3rd request gets a 429 with
Retry-After 0.02 s, the 4th a connection reset".

Faults: ``ok``, ``rate_limit`` (429 + Retry-After), ``server_error`` (500),
``unavailable`` (503), ``reset`` (connection reset mid-body), ``hang`` (no answer for
``hang_s``), ``truncated`` (body shorter than its Content-Length), ``malformed_args``
(tool-call arguments that are not JSON), ``unknown_tool``, ``empty_choice``
(``choices: []``), ``context_length`` (400 context_length_exceeded), ``unauthorized``
(401), and what gateways and proxies send: ``not_json`` (a 200 JSON response whose body
is plain text), ``truncated_json`` (a 200 whose JSON is cut, with a Content-Length that
matches the cut body), ``html_200`` and ``html_502`` (a gateway's HTML error page),
``trickle`` (a valid answer sent one byte every ``Fault.interval_s``), ``huge`` (a 200
whose answer is ``Fault.size_bytes`` long, with or without a Content-Length), and
``wrong_type_args`` (tool-call arguments sent as a JSON object whose value has the wrong
type). Run two servers for a primary and a fallback: each answers with the model name
it is asked for, so both can serve the same name on different ports.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Every fault kind a :class:`Fault` may name (the module's docstring says what each does).
FAULTS = ("ok", "rate_limit", "server_error", "unavailable", "reset", "hang", "truncated",
          "malformed_args", "unknown_tool", "empty_choice", "context_length", "unauthorized",
          "not_json", "truncated_json", "html_200", "html_502", "trickle", "huge",
          "wrong_type_args")

#: The page a misconfigured gateway sends (nginx's, as seen in the wild).
GATEWAY_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n"
    "<script>var x = '<b>not text</b>';</script></body>\r\n</html>\r\n"
)

Responder = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class Fault:
    """What to do with one request. ``retry_after_s`` goes with ``rate_limit``;
    ``interval_s`` (seconds between bytes) with ``trickle``; ``size_bytes`` and
    ``declare_length`` (send a Content-Length, or stream until the connection closes)
    with ``huge``."""

    kind: str = "ok"
    retry_after_s: float = 0.0
    interval_s: float = 1.0
    size_bytes: int = 50 * 1024 * 1024
    declare_length: bool = True

    def __post_init__(self) -> None:
        if self.kind not in FAULTS:
            raise ValueError(f"unknown fault {self.kind!r}; known: {', '.join(FAULTS)}")


@dataclass(kw_only=True)
class Received:
    """One request as the server saw it, and what it did."""

    index: int
    body: dict[str, Any]
    fault: str
    at: float = field(default_factory=time.monotonic)


def counting_responder(steps: int, tool: str = "lookup") -> Responder:
    """Call ``tool(i=k)`` while the conversation has k < ``steps`` tool results, then answer."""

    def respond(body: dict[str, Any]) -> dict[str, Any]:
        k = sum(1 for m in body.get("messages", []) if m.get("role") == "tool")
        if k < steps:
            return {"role": "assistant", "content": None, "tool_calls": [{
                "id": f"call_{k}", "type": "function",
                "function": {"name": tool, "arguments": json.dumps({"i": k})}}]}
        return {"role": "assistant", "content": f"done after {k} lookups"}

    return respond


def _completion(body: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    """A chat completion carrying ``message``; a ``finish_reason`` key in the message
    (``"length"``, say) is moved to the choice."""
    prompt = sum(len(str(m.get("content") or "")) for m in body.get("messages", [])) // 4
    message = dict(message)
    finish = message.pop("finish_reason", None) or (
        "tool_calls" if message.get("tool_calls") else "stop")
    return {
        "id": "chatcmpl-fault", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", "fault-model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": 7,
                  "total_tokens": prompt + 7},
    }


def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class FaultServer:
    """Start with ``with FaultServer(...) as server:``; ``server.base_url`` is ``/v1``.

    Args:
        plan: Faults for the first requests, in order; later requests are ``ok``.
        fault_for: Instead of a plan, decides each request's fault from its index.
        responder: Builds the assistant message of an ``ok`` answer (a
            ``finish_reason`` key in it sets the choice's).
        hang_s: How long a ``hang`` holds the request before closing it.
        port: Listen on this loopback port (default: any free one).
    """

    def __init__(
        self,
        plan: Iterable[Fault | str] = (),
        *,
        fault_for: Callable[[int], Fault] | None = None,
        responder: Responder | None = None,
        hang_s: float = 2.0,
        port: int = 0,
    ) -> None:
        self.set_plan(plan)
        self.fault_for = fault_for
        self.responder = responder or counting_responder(3)
        self.hang_s = hang_s
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The loopback port the server listens on (chosen when ``port=0``)."""
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL to give a model: ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def set_plan(self, plan: Iterable[Fault | str]) -> None:
        """Faults for the next requests, counted from the first one the server got."""
        self._plan = [f if isinstance(f, Fault) else Fault(kind=f) for f in plan]

    def faults(self) -> list[str]:
        """The fault kind each request got so far, in arrival order (``"ok"`` for a
        normal answer): what a test asserts on to know which attempts were made."""
        return [r.fault for r in self.received]

    def _next(self, body: dict[str, Any]) -> Fault:
        with self._lock:
            index = len(self.received)
            if self.fault_for is not None:
                fault = self.fault_for(index)
            else:
                fault = self._plan[index] if index < len(self._plan) else Fault()
            self.received.append(Received(index=index, body=body, fault=fault.kind))
            return fault

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"fault_server": self})


#: Faults answered with an error status and an OpenAI-shaped error body.
_ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "server_error": (500, _error("The server had an error", "server_error")),
    "unavailable": (503, _error("The engine is currently overloaded", "server_error")),
    "unauthorized": (401, _error("Incorrect API key provided", "invalid_request_error",
                                 "invalid_api_key")),
    "context_length": (400, _error(
        "This model's maximum context length is 128 tokens. However, your messages "
        "resulted in 900 tokens.", "invalid_request_error", "context_length_exceeded")),
}


def _corrupt_call(kind: str, message: dict[str, Any]) -> dict[str, Any]:
    """``message`` with its first tool call spoiled as the fault ``kind`` says."""
    call = dict(message["tool_calls"][0])
    function = dict(call["function"])
    if kind == "malformed_args":
        function["arguments"] = function["arguments"][:-1] + ", "
    elif kind == "wrong_type_args":
        # an object, not JSON text; and a string where a number goes
        arguments = json.loads(function["arguments"])
        function["arguments"] = {k: f"#{v}" for k, v in arguments.items()}
    else:
        function["name"] = "no_such_tool"
    call["function"] = function
    return {**message, "tool_calls": [call]}


class _Handler(BaseHTTPRequestHandler):
    """Answers each POST with the next fault of :attr:`fault_server`'s plan."""

    protocol_version = "HTTP/1.1"
    fault_server: FaultServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, payload: dict[str, Any] | bytes,
              headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _answer_bytes(self, body: dict[str, Any]) -> bytes:
        return json.dumps(_completion(body, self.fault_server.responder(body))).encode()

    def _rate_limit(self, body: dict[str, Any], fault: Fault) -> None:
        self._send(429, _error("Rate limit reached, slow down", "requests",
                               "rate_limit_exceeded"),
                   {"Retry-After": f"{fault.retry_after_s:g}",
                    "retry-after-ms": str(int(fault.retry_after_s * 1000))})

    def _cut(self, body: dict[str, Any], fault: Fault) -> None:
        """Half the answer under a full Content-Length, then a reset or a clean close."""
        data = self._answer_bytes(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        if fault.kind == "reset":
            self._abort()
        else:
            self.close_connection = True

    def _hang(self, body: dict[str, Any], fault: Fault) -> None:
        time.sleep(self.fault_server.hang_s)
        self._abort()

    def _not_json(self, body: dict[str, Any], fault: Fault) -> None:
        self._send(200, b"upstream request timeout")

    def _truncated_json(self, body: dict[str, Any], fault: Fault) -> None:
        data = self._answer_bytes(body)
        self._send(200, data[: len(data) // 2])

    def _html(self, body: dict[str, Any], fault: Fault) -> None:
        self._send(200 if fault.kind == "html_200" else 502, GATEWAY_PAGE.encode(),
                   content_type="text/html")

    def _trickle(self, body: dict[str, Any], fault: Fault) -> None:
        data = self._answer_bytes(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        try:
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                time.sleep(fault.interval_s)
        except OSError:  # the client gave up: what a trickle is for
            return

    def _huge(self, body: dict[str, Any], fault: Fault) -> None:
        head, tail = json.dumps(_completion(body, {
            "role": "assistant", "content": "<FILL>"})).encode().split(b"<FILL>")
        fill = max(0, fault.size_bytes - len(head) - len(tail))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if fault.declare_length:
            self.send_header("Content-Length", str(len(head) + fill + len(tail)))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        chunk = b"all work and no play " * 3000
        try:
            self.wfile.write(head)
            while fill > 0:
                piece = chunk[:fill]
                self.wfile.write(piece)
                fill -= len(piece)
            self.wfile.write(tail)
            self.wfile.flush()
        except OSError:  # the client stopped reading at its cap
            return

    def _empty_choice(self, body: dict[str, Any], fault: Fault) -> None:
        payload = _completion(body, {"role": "assistant", "content": ""})
        payload["choices"] = []
        self._send(200, payload)

    def _ok(self, body: dict[str, Any], fault: Fault) -> None:
        """The responder's answer; for a tool-call fault, its first call spoiled."""
        message = self.fault_server.responder(body)
        if fault.kind in ("malformed_args", "unknown_tool", "wrong_type_args") \
                and message.get("tool_calls"):
            message = _corrupt_call(fault.kind, message)
        self._send(200, _completion(body, message))

    def _abort(self) -> None:
        # SO_LINGER 0: close with a TCP reset rather than a clean FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    #: What each fault does that is not an error status nor a plain answer.
    _ACTIONS: dict[str, Callable[[_Handler, dict[str, Any], Fault], None]] = {
        "rate_limit": _rate_limit, "reset": _cut, "truncated": _cut, "hang": _hang,
        "not_json": _not_json, "truncated_json": _truncated_json, "html_200": _html,
        "html_502": _html, "trickle": _trickle, "huge": _huge,
        "empty_choice": _empty_choice,
    }

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        fault = self.fault_server._next(body)
        if fault.kind in _ERRORS:
            self._send(*_ERRORS[fault.kind])
        else:
            self._ACTIONS.get(fault.kind, _Handler._ok)(self, body, fault)


def closed_port() -> int:
    """A loopback port with nothing listening (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
