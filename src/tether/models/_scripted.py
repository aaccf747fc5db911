"""Deterministic models for tests and benchmarks: shipped, for users' tests as much as ours."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from operator import attrgetter
from typing import TypeAlias

from ..core import Message, ToolCall, Usage, UsageError
from ._protocol import ModelRequest, ModelResponse

#: What a script step may be: a final answer, one or more tool calls, a full message or
#: response, or an exception to raise.
ScriptItem: TypeAlias = (
    str | ToolCall | Sequence[ToolCall] | Message | ModelResponse | BaseException
)
ScriptFunction: TypeAlias = Callable[[ModelRequest], ScriptItem | Awaitable[ScriptItem]]


class ScriptExhaustedError(UsageError):
    """A scripted model was asked for more steps than it has."""


def step_of(request: ModelRequest) -> int:
    """The 0-based index of a request's step: the run's step number less one, or, for a
    request made outside a run, how many assistant turns its conversation has.

    Indexing a script by step rather than by call count keeps it deterministic when a
    run resumes in a fresh process or retries a call.
    """
    if request.step:
        return request.step - 1
    return list(map(_role, request.messages)).count("assistant")


_role = attrgetter("role")


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _new_input_tokens(request: ModelRequest) -> int:
    """Estimated tokens of what the request adds after the model's previous answer.

    Scripted models count only the new input (about four characters a token), so their
    cost per call stays flat however long a run gets.
    """
    chars = 0
    for message in reversed(request.messages):
        if message.role == "assistant":
            break
        chars += len(message.content or "")
    return max(1, chars // 4)


def _to_response(
    item: ScriptItem, request: ModelRequest, step: int, model: str = "scripted"
) -> ModelResponse:
    if isinstance(item, BaseException):
        raise item
    if isinstance(item, ModelResponse):
        return item
    if isinstance(item, str):
        message = Message.assistant(item)
    elif isinstance(item, ToolCall):
        message = Message.assistant(None, (item,))
    elif isinstance(item, Message):
        message = item
    else:
        message = Message.assistant(None, tuple(item))
    # Give calls ids unique within the run, as real providers do.
    calls = tuple(
        c.model_copy(update={"id": f"call_{step}_{i}"}) if c.id.startswith("call_") else c
        for i, c in enumerate(message.tool_calls)
    )
    message = message.model_copy(update={"tool_calls": calls})
    answer = _estimate_tokens((message.content or "") + "".join(c.arguments for c in calls))
    return ModelResponse(
        message=message,
        usage=Usage(input_tokens=_new_input_tokens(request), output_tokens=answer, requests=1),
        provider="scripted",
        model=model,
        finish_reason="tool_calls" if calls else "stop",
    )


class ScriptedModel:
    """Answers step ``k`` of a run with ``script[k]``.

    Example::

        model = ScriptedModel([ToolCall.of("add", a=1, b=2), "The sum is 3."])

    Asking for a step past the end raises :class:`ScriptExhaustedError`;
    :meth:`assert_used` fails if a test left steps unused.
    """

    provider = "scripted"
    model_name = "scripted"

    def __init__(self, script: Sequence[ScriptItem]) -> None:
        self._script = list(script)
        self._highest = -1
        self.calls = 0

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """The scripted answer for the request's step (:func:`step_of`): a retry or a
        resumed run gets the same answer again. A script item that is an exception is
        raised instead; usage is estimated from the text (about 4 characters a token).

        Raises:
            ScriptExhaustedError: The script has no item for this step.
        """
        step = step_of(request)
        self.calls += 1
        if step >= len(self._script):
            raise ScriptExhaustedError(
                f"scripted model has {len(self._script)} steps but was asked for step {step}",
                hint="add the missing responses to the script, or check why the run went on",
            )
        self._highest = max(self._highest, step)
        return _to_response(self._script[step], request, step)

    def assert_used(self) -> None:
        """Raise if any scripted step was never asked for."""
        unused = len(self._script) - (self._highest + 1)
        if unused:
            raise ScriptExhaustedError(f"{unused} scripted steps were never used")


class FunctionModel:
    """A model whose answer is computed by a (sync or async) function of the request."""

    provider = "scripted"

    def __init__(self, function: ScriptFunction, *, model_name: str = "function") -> None:
        self._function = function
        self.model_name = model_name
        self.calls = 0

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """The function's answer to ``request`` (awaited if it returns an awaitable),
        turned into a response as a :class:`ScriptedModel` script item is; an
        exception it returns or raises propagates as the model's failure."""
        self.calls += 1
        item = self._function(request)
        if inspect.isawaitable(item):
            item = await item
        return _to_response(item, request, step_of(request), self.model_name)
