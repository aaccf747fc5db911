"""Where a model call's time goes, and how fast the embedded local model streams.

1. Against llama-cpp-python's OpenAI-compatible server (started here on 127.0.0.1
   with the embedded SmolLM2-135M-Instruct), each iteration sends the same tool-call
   request twice, in alternating order: once through Tether's OpenAI-compatible
   provider, timing Tether's own code (building the request body, parsing the
   response) apart from the SDK call; once as a raw httpx POST of the same body,
   whose round trip is the server's time. The SDK's share is the SDK call minus the
   raw round trip (medians over the iterations). The request is deterministic
   (temperature 0, fixed seed), so after the warm-up every call reuses the server's
   prompt cache equally.
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
    OpenAIModel,
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


async def _timed_sdk_call(model: OpenAIModel, raw_client: Any) -> tuple[float, float]:
    """One call through the provider's own steps; (tether_ms, sdk_ms) wall times."""
    t0 = time.perf_counter()
    body = chat_request(TOOL_REQUEST, model=model.model_name, compatible=True)
    t1 = time.perf_counter()
    completion = await raw_client.chat.completions.create(**body)
    t2 = time.perf_counter()
    response = chat_response(completion, provider=model.provider, model=model.model_name)
    t3 = time.perf_counter()
    assert response.message.tool_calls, "the benchmark request should produce a tool call"
    return ((t1 - t0) + (t3 - t2)) * 1000, (t2 - t1) * 1000


async def _timed_raw_call(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> float:
    t0 = time.perf_counter()
    reply = await client.post(url, json=body, timeout=120)
    reply.read()
    t1 = time.perf_counter()
    reply.raise_for_status()
    return (t1 - t0) * 1000


async def _openai_compatible(base_url: str, calls: int) -> dict[str, list[float]]:
    model = OpenAIModel("smollm2", api_key="not-needed", base_url=base_url,
                        provider="openai-compatible")  # fmt: skip
    body = chat_request(TOOL_REQUEST, model="smollm2", compatible=True)
    url = f"{base_url}/chat/completions"
    tether: list[float] = []
    sdk: list[float] = []
    raw: list[float] = []
    async with model, httpx.AsyncClient() as client:
        sdk_client = model._client()  # the provider's own SDK client (retries off)
        for _ in range(3):  # warm up: model pages, prompt cache, connections
            await model.complete(TOOL_REQUEST)
            await _timed_raw_call(client, url, body)
        for i in range(calls):
            if i % 2:
                raw.append(await _timed_raw_call(client, url, body))
            own, through_sdk = await _timed_sdk_call(model, sdk_client)
            tether.append(own)
            sdk.append(through_sdk)
            if not i % 2:
                raw.append(await _timed_raw_call(client, url, body))
        # Tether's own work once more, in a tight loop: the per-call figure without
        # timer noise.
        completion = await sdk_client.chat.completions.create(**body)
        loops = 2000
        t0 = time.perf_counter()
        for _ in range(loops):
            chat_request(TOOL_REQUEST, model="smollm2", compatible=True)
            chat_response(completion, provider="openai-compatible", model="smollm2")
        tight = (time.perf_counter() - t0) * 1000 / loops
    return {"tether": tether, "sdk": sdk, "raw": raw, "tight": [tight]}


def measure_openai_compatible(calls: int = 30) -> list[dict[str, Any]]:
    """Per-call time split (Tether / SDK / server) against a local llama.cpp server."""
    config = {**_config(), "calls": calls, "server": "llama_cpp.server (127.0.0.1)",
              "request": "1 tool, tool call answer"}  # fmt: skip
    with running_server(
        default_local_model_path(), args=["--chat_format", "chatml-function-calling"]
    ) as base_url:
        times = asyncio.run(_openai_compatible(base_url, calls))
    tether = statistics.median(times["tether"])
    sdk_total = statistics.median(times["sdk"])
    server = statistics.median(times["raw"])
    lines = [
        emit("tether_ms_per_call", tether, "ms", **config,
             budget_ms=TETHER_BUDGET_MS, within_budget=tether <= TETHER_BUDGET_MS),
        emit("tether_ms_per_call_tight_loop", times["tight"][0], "ms", **config,
             budget_ms=TETHER_BUDGET_MS),
        emit("sdk_ms_per_call", sdk_total - server, "ms", **config,
             note="SDK call minus the raw httpx round trip of the same body (medians)"),
        emit("server_ms_per_call", server, "ms", **config,
             note="raw httpx round trip of the same body (median)"),
        emit("sdk_call_ms_per_call", sdk_total, "ms", **config,
             note="the whole SDK call, server included (median)"),
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
