"""Fixtures for the observe tests: a real OTLP/HTTP receiver on 127.0.0.1, journals."""

from __future__ import annotations

import gzip
import threading
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tether.core import Event, EventType
from tether.store import Store


@dataclass
class OtlpReceiver:
    """An OTLP/HTTP traces endpoint that decodes and keeps every request."""

    url: str
    bodies: list[bytes] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    def spans(self) -> list[Any]:
        """Every span received, with ``resource``/``scope`` of its batch attached."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        found = []
        for body in self.bodies:
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found.append((resource_spans.resource, scope_spans, span))
        return found


@pytest.fixture
def otlp_receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    # Loopback only: never through a proxy.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    received: list[bytes] = []
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            received.append(body)
            paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05),
                              daemon=True)
    thread.start()
    port = server.server_address[1]
    receiver = OtlpReceiver(url=f"http://127.0.0.1:{port}", bodies=received, paths=paths)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def attributes(span: Any) -> dict[str, Any]:
    """A protobuf span's (or event's) attributes as a plain dict."""
    found: dict[str, Any] = {}
    for kv in span.attributes:
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "array_value":
            found[kv.key] = [getattr(v, v.WhichOneof("value")) for v in value.array_value.values]
        else:
            found[kv.key] = getattr(value, kind) if kind else None
    return found


class Journal:
    """Builds a run's journal event by event, in the Runner's shapes (for journals the
    Runner cannot produce yet: sub-runs, retries, priced calls)."""

    def __init__(self, run_id: str, *, t0: float = 1_700_000_000.0) -> None:
        self.run_id = run_id
        self.events: list[Event] = []
        self.ts = t0

    def add(self, kind: str, step: int, payload: dict[str, Any], *, span: str | None = None,
            duration_ms: float | None = None, dt: float = 0.01) -> Journal:
        self.ts += dt
        parent = None if span is None else (f"s{step}" if "." in span else "run")
        self.events.append(Event(run_id=self.run_id, seq=len(self.events) + 1, type=kind,
                                 step=step, ts=self.ts, payload=payload, span_id=span,
                                 parent_span_id=parent, duration_ms=duration_ms))
        return self

    def started(self, agent: str = "agent", task: str = "task", *,
                parent: str | None = None, tools: Sequence[str] = ()) -> Journal:
        return self.add(EventType.RUN_STARTED, 0, {
            "agent": agent, "agent_spec": None, "task": task, "instructions": "be brief",
            "provider": "scripted", "model": "m1", "parent_run_id": parent,
            "tools": [{"name": t, "description": f"the {t} tool",
                       "parameters": {"type": "object", "properties": {}}} for t in tools],
        })

    def model(self, step: int, *, calls: Sequence[tuple[str, dict[str, Any]]] = (),
              answer: str | None = None, tokens: tuple[int, int] = (10, 2),
              cost: float | None = None, duration_ms: float = 5.0, dt: float = 0.01) -> Journal:
        new: list[dict[str, Any]] = []
        if step == 1:
            new = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "task"}]
        message: dict[str, Any] = {"role": "assistant"}
        if answer is not None:
            message["content"] = answer
        if calls:
            message["tool_calls"] = [
                {"id": f"call_{step}_{i}", "name": n, "arguments": _json(a)}
                for i, (n, a) in enumerate(calls)]
        response: dict[str, Any] = {
            "message": message, "usage": {"input_tokens": tokens[0], "output_tokens": tokens[1]},
            "provider": "scripted", "model": "m1"}
        if cost is not None:
            response["cost_usd"] = cost
        self.add(EventType.MODEL_REQUEST, step, {"provider": "scripted", "model": "m1",
                                                 "prefix": 0, "new": new},
                 span=f"s{step}.m", dt=dt)
        self.add(EventType.MODEL_RESPONSE, step, response, span=f"s{step}.m",
                 duration_ms=duration_ms, dt=0.0)
        for i, (n, a) in enumerate(calls):
            self.add(EventType.TOOL_INTENT, step, {
                "call_id": f"call_{step}_{i}", "tool": n, "arguments": a,
                "idempotency_key": f"{self.run_id}-{step}-{i}", "index": i,
                "idempotent": False}, span=f"s{step}.t{i}", dt=0.0)
        if answer is not None and not calls:
            self.add(EventType.RUN_COMPLETED, step, {"output": answer}, dt=0.0)
        return self

    def result(self, step: int, index: int, tool: str, content: str, *,
               error: str | None = None, cost: float | None = None,
               duration_ms: float = 3.0) -> Journal:
        payload: dict[str, Any] = {"call_id": f"call_{step}_{index}", "tool": tool,
                                   "content": content}
        if cost is not None:
            payload["cost_usd"] = cost
        kind = EventType.TOOL_RESULT
        if error is not None:
            kind = EventType.TOOL_ERROR
            payload["error"] = {"type": error, "message": content}
        return self.add(kind, step, payload, span=f"s{step}.t{index}",
                        duration_ms=duration_ms, dt=duration_ms / 1000)

    async def save(self, store: Store) -> list[Event]:
        await store.append(self.events)
        return self.events


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
