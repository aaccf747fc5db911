from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.models import default_local_model_path
from tether.models._llama_server import running_server

from ._replay import ReplayServer


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    """A local HTTP server replaying recorded provider responses."""
    server = ReplayServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gguf() -> Path:
    return default_local_model_path()


@pytest.fixture(scope="session")
def llama_server(gguf: Path) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1, serving SmolLM2."""
    args = ["--chat_format", "chatml-function-calling", "--n_ctx", "2048"]
    with running_server(gguf, args=args) as base_url:
        yield base_url
