"""OpenAIEmbedder against a real HTTP server on 127.0.0.1 (never the network)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from tether.core import ConfigurationError
from tether.memory import EmbeddingError, OpenAIEmbedder


class _Fake:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.status = 200
        self.shuffle = True
        self.dim = 4


@pytest.fixture
def server() -> Iterator[tuple[str, _Fake]]:
    fake = _Fake()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fake.requests.append((dict(self.headers), body))
            if fake.status != 200:
                payload = {"error": {"message": "boom"}}
            else:
                data = [{"object": "embedding", "index": i,
                         "embedding": [float(len(t)), 1.0, float(i), 0.0][: fake.dim]}
                        for i, t in enumerate(body["input"])]
                if fake.shuffle:
                    data.reverse()  # the API does not promise order; index does
                payload = {"object": "list", "data": data, "model": body["model"]}
            raw = json.dumps(payload).encode()
            self.send_response(fake.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", fake
    httpd.shutdown()
    httpd.server_close()


def test_embeds_in_order_normalised_and_batched(server: tuple[str, _Fake]) -> None:
    url, fake = server
    emb = OpenAIEmbedder(model="text-embedding-3-small", dim=4, api_key="sk-test",
                         base_url=url, batch_size=2, send_dimensions=True)
    texts = ["a", "bbb", "cc", "dddd", "e"]
    v = emb.embed(texts)
    emb.close()
    assert v.shape == (5, 4) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0)
    expected = np.array([[len(t), 1.0, i % 2, 0.0] for i, t in enumerate(texts)])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(v, expected, atol=1e-6)
    assert [b["input"] for _, b in fake.requests] == [["a", "bbb"], ["cc", "dddd"], ["e"]]
    headers, body = fake.requests[0]
    assert headers["Authorization"] == "Bearer sk-test"
    assert body["model"] == "text-embedding-3-small" and body["dimensions"] == 4
    assert emb.name == "openai:text-embedding-3-small:4"


def test_errors_are_typed(server: tuple[str, _Fake]) -> None:
    url, fake = server
    emb = OpenAIEmbedder(dim=4, api_key="sk-test", base_url=url)
    fake.status = 503
    with pytest.raises(EmbeddingError) as e:
        emb.embed(["x"])
    assert e.value.retryable and "503" in e.value.message
    fake.status = 401
    with pytest.raises(EmbeddingError) as e:
        emb.embed(["x"])
    assert not e.value.retryable and e.value.hint
    fake.status, fake.dim = 200, 3
    with pytest.raises(EmbeddingError) as e:
        emb.embed(["x"])
    assert "dim=" in (e.value.hint or "")
    emb.close()


def test_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError):
        OpenAIEmbedder()
