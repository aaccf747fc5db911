"""Where a model call's time goes, and how fast the embedded local model streams.

1. Against llama-cpp-python's OpenAI-compatible server (started here on 127.0.0.1
   with the embedded SmolLM2-135M-Instruct), each call goes through the provider's
   steps: Tether's own code (building the request body, parsing the response), the
   OpenAI SDK (retries off, as the provider configures it), and the HTTP exchange,
   timed at the SDK's transport (send, the server's work, reading the body). The
   SDK's share is its call less that exchange, per call; figures are medians. The
   request is deterministic (temperature 0, fixed seed).
2. The default in-process model (``local``): time to the first streamed token and
   the generation rate after it.

Prints one JSON object per figure and writes them to bench/results/providers.jsonl.
Usable as a module: ``measure_openai_compatible()`` and ``measure_local()``.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, write_results  # noqa: E402

from tether.core import Message, ToolSpec  # noqa: E402
from tether.models import (  # noqa: E402
    LocalModel,
    ModelRequest,
    ModelSettings,
    default_local_model_path,
)
from tether.models._llama_server import running_server  # noqa: E402
from tether.models._openai_wire import chat_request, chat_response  # noqa: E402

#: Tether's own work per call must stay under this.
TETHER_BUDGET_MS = 0.2

WEATHER = ToolSpec(
    name="get_weather",
    description="Get the current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
)
TOOL_REQUEST = ModelRequest(
    messages=(
        Message.system("You are a weather assistant. Answer in one sentence."),
        Message.user("What is the weather in Paris?"),
    ),
    tools=(WEATHER,),
    settings=ModelSettings(temperature=0.0, seed=0, max_tokens=64),
)
TOPICS = ("the sea", "mountains", "rivers", "forests", "deserts", "the moon", "rain", "snow")


def stream_request(topic: str) -> ModelRequest:
    """A plain-text request; each topic gives a prompt the model has not cached."""
    return ModelRequest(
        messages=(Message.user(f"Write three sentences about {topic}."),),
        settings=ModelSettings(max_tokens=512),
    )


def _config() -> dict[str, Any]:
    return {
        "model": default_local_model_path().name,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "openai_sdk": metadata.version("openai"),
        "llama_cpp_python": metadata.version("llama-cpp-python"),
    }


class TimedTransport(httpx.AsyncHTTPTransport):
    """Times each request at the transport: sending it, the server's work, reading the
    body. What the SDK call takes beyond this is the SDK's own time."""

    def __init__(self) -> None:
        super().__init__()
        self.last_ms = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        t0 = time.perf_counter()
        response = await super().handle_async_request(request)
        await response.aread()
        self.last_ms = (time.perf_counter() - t0) * 1000
        return response


async def _timed_call(sdk: Any, transport: TimedTransport) -> tuple[float, float, float]:
    """One call through the provider's own steps: (tether_ms, sdk_ms, server_ms)."""
    t0 = time.perf_counter()
    body = chat_request(TOOL_REQUEST, model="smollm2", compatible=True)
    t1 = time.perf_counter()
    completion = await sdk.chat.completions.create(**body)
    t2 = time.perf_counter()
    response = chat_response(completion, provider="openai-compatible", model="smollm2")
    t3 = time.perf_counter()
    assert response.message.tool_calls, "the benchmark request should produce a tool call"
    server = transport.last_ms
    return ((t1 - t0) + (t3 - t2)) * 1000, (t2 - t1) * 1000 - server, server


async def _openai_compatible(base_url: str, calls: int) -> dict[str, list[float]]:
    import openai

    transport = TimedTransport()
    # The provider's SDK settings (retries off), with a transport that times the server.
    sdk = openai.AsyncOpenAI(api_key="not-needed", base_url=base_url, max_retries=0,
                             http_client=httpx.AsyncClient(transport=transport, timeout=120))
    times: dict[str, list[float]] = {"tether": [], "sdk": [], "server": []}
    async with sdk:
        for _ in range(3):  # warm up: model pages, prompt cache, connections
            await _timed_call(sdk, transport)
        for _ in range(calls):
            own, in_sdk, server = await _timed_call(sdk, transport)
            times["tether"].append(own)
            times["sdk"].append(in_sdk)
            times["server"].append(server)
        # Tether's own work once more, in a tight loop: the per-call figure without
        # timer noise.
        completion = await sdk.chat.completions.create(
            **chat_request(TOOL_REQUEST, model="smollm2", compatible=True))
        loops = 2000
        t0 = time.perf_counter()
        for _ in range(loops):
            chat_request(TOOL_REQUEST, model="smollm2", compatible=True)
            chat_response(completion, provider="openai-compatible", model="smollm2")
        times["tight"] = [(time.perf_counter() - t0) * 1000 / loops]
    return times


def measure_openai_compatible(calls: int = 30) -> list[dict[str, Any]]:
    """Per-call time split (Tether / SDK / server) against a local llama.cpp server."""
    config = {**_config(), "calls": calls, "server": "llama_cpp.server (127.0.0.1)",
              "request": "1 tool, tool call answer"}  # fmt: skip
    with running_server(
        default_local_model_path(), args=["--chat_format", "chatml-function-calling"]
    ) as base_url:
        times = asyncio.run(_openai_compatible(base_url, calls))
    tether = statistics.median(times["tether"])
    sdk = statistics.median(times["sdk"])
    server = statistics.median(times["server"])
    lines = [
        emit("tether_ms_per_call", tether, "ms", **config,
             budget_ms=TETHER_BUDGET_MS, within_budget=tether <= TETHER_BUDGET_MS),
        emit("tether_ms_per_call_tight_loop", times["tight"][0], "ms", **config,
             budget_ms=TETHER_BUDGET_MS),
        emit("sdk_ms_per_call", sdk, "ms", **config,
             note="the SDK call less its HTTP exchange, per call (median)"),
        emit("server_ms_per_call", server, "ms", **config,
             note="the HTTP exchange timed at the transport: send, server work, body "
                  "read (median)"),
    ]  # fmt: skip
    return lines


async def _local(runs: int) -> tuple[list[float], list[float], list[int]]:
    model = LocalModel()
    await asyncio.to_thread(model.load)
    firsts: list[float] = []
    rates: list[float] = []
    tokens: list[int] = []
    async for _ in model.stream(stream_request(TOPICS[-1])):  # warm-up
        pass
    for run in range(runs):
        started = time.perf_counter()
        first: float | None = None
        final = None
        async for delta in model.stream(stream_request(TOPICS[run % len(TOPICS)])):
            if delta.text and first is None:
                first = time.perf_counter()
            if delta.response is not None:
                final = delta.response
        ended = time.perf_counter()
        assert first is not None and final is not None
        tokens.append(final.usage.output_tokens)
        firsts.append((first - started) * 1000)
        # The first token is out at ``first``; the rest took until ``ended``.
        rates.append((tokens[-1] - 1) / (ended - first))
    return firsts, rates, tokens


def measure_local(runs: int = 5) -> list[dict[str, Any]]:
    """First-token latency and streaming rate of the default in-process model."""
    config = {**_config(), "runs": runs, "threads": os.cpu_count(),
              "prompt": "Write three sentences about {topic}.", "temperature": 0}  # fmt: skip
    firsts, rates, tokens = asyncio.run(_local(runs))
    return [
        emit("local_first_token_ms", statistics.median(firsts), "ms", **config,
             note="a new user message each run; the chat template's shared prefix is "
                  "cached by llama.cpp, the rest of the prompt is evaluated"),
        emit("local_tokens_per_s", statistics.median(rates), "tokens/s", **config,
             output_tokens_median=statistics.median(tokens)),
    ]  # fmt: skip


def main() -> None:
    lines = measure_openai_compatible() + measure_local()
    write_results(__file__, lines)


if __name__ == "__main__":
    main()
