"""Review: the response-size cap counts the bytes on the wire, not the body.

``max_response_bytes`` is checked by the transport against ``Content-Length`` and the
raw stream; a server (or gateway) answering ``Content-Encoding: gzip`` sends a few kB
that httpx inflates to a thousand times as much, all read into memory before the cap
or ``Policy.max_response_chars`` can say no: a 4 MB gzip body (under the default cap)
is about 4 GB in memory, enough to get the agent's process OOM-killed. Fixed: the
capped stream counts what the body inflates to, and only gzip and deflate are asked for.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tether.core import Message, ModelBehaviorError
from tether.models import ModelRequest, OpenAIModel

INFLATED = 20_000_000  # characters of answer once inflated
CAP = 200_000  # bytes


def _bomb() -> bytes:
    body = {"id": "cmpl-1", "object": "chat.completion", "created": 0, "model": "qwen",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "A" * INFLATED}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
    return gzip.compress(json.dumps(body).encode(), compresslevel=9)


@contextmanager
def _serve(payload: bytes) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


async def test_a_compressed_body_is_capped_by_its_inflated_size() -> None:
    payload = _bomb()
    assert len(payload) < CAP  # on the wire it is well under the cap
    with _serve(payload) as base_url:
        async with OpenAIModel("qwen", api_key="sk-test", base_url=base_url,
                               provider="openai-compatible", max_response_bytes=CAP) as model:
            with pytest.raises(ModelBehaviorError, match="cap"):
                await asyncio.wait_for(model.complete(
                    ModelRequest(messages=(Message.user("hi"),))), 60)


async def test_an_ordinary_compressed_answer_still_reads() -> None:
    body = {"id": "cmpl-1", "object": "chat.completion", "created": 0, "model": "qwen",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "hello " * 1000}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
    with _serve(gzip.compress(json.dumps(body).encode())) as base_url:
        async with OpenAIModel("qwen", api_key="sk-test", base_url=base_url,
                               provider="openai-compatible", max_response_bytes=CAP) as model:
            response = await asyncio.wait_for(model.complete(
                ModelRequest(messages=(Message.user("hi"),))), 60)
    assert response.message.content == "hello " * 1000
