"""The ``@tool`` decorator: a typed Python function becomes a tool a model can call."""

from __future__ import annotations

import asyncio
import inspect
import os
import queue
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, TypeVar, cast, get_type_hints, overload

import docstring_parser
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, create_model

from ..core import ToolDefinitionError, ToolError, ToolResult, ToolSpec
from ._context import ToolContext
from ._definition import ToolDef


class _NotApplied:
    def __repr__(self) -> str:
        return "NOT_APPLIED"


#: Threads of sync tool calls running in this process, by (run id, call id).
_THREADS: dict[tuple[str, str], int] = {}
_THREADS_LOCK = threading.Lock()

#: Returned by a ``reconcile`` hook when the call in doubt did not take effect.
NOT_APPLIED: Final = _NotApplied()

Reconciler = Callable[[str], Any]
R = TypeVar("R", bound=Reconciler)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


def as_result(value: Any) -> ToolResult:
    """A tool's return value as a :class:`~tether.core.ToolResult`: a ``str`` is the text
    the model sees; any other value is a structured value (JSON-compatible once
    converted: dataclasses and pydantic models become objects).

    Raises:
        pydantic_core.PydanticSerializationError: the value cannot be converted to JSON.
    """
    if isinstance(value, ToolResult):
        return value
    if isinstance(value, str):  # already valid: skip validating (the hot path)
        return ToolResult.model_construct(content=value)
    return ToolResult.model_construct(value=pydantic_core.to_jsonable_python(value))


def serialize_result(value: Any) -> str:
    """The text a model sees for a tool's return value: strings as they are, else JSON."""
    return as_result(value).text()


def still_running(run_id: str, call_id: str) -> bool:
    """Whether a sync tool's thread for this call, given up on (timed out, its run
    interrupted), still runs in this process: its outcome is not known yet."""
    with _THREADS_LOCK:
        return (run_id, call_id) in _THREADS


class _Workers:
    """Daemon threads for sync tools, reused. Unlike a fixed-size pool, a call never
    waits behind another: it takes an idle worker or starts a new one. Daemon, so a call
    the run gave up on never keeps the process alive at exit (its outcome is in doubt,
    as after a crash); idle workers beyond ``keep`` end."""

    def __init__(self, keep: int = 32) -> None:
        self._keep = keep
        self._reset()

    def _reset(self) -> None:
        """A fresh pool: also in a forked child, where the parent's workers do not exist
        (counting them as idle would leave the child's calls waiting forever)."""
        self._idle = 0
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            spawn = self._idle == 0
            if not spawn:
                self._idle -= 1  # that worker is (about to be) waiting for this job
        self._jobs.put(job)
        if spawn:
            threading.Thread(target=self._work, name="tether-tool", daemon=True).start()

    def _work(self) -> None:
        while True:
            self._jobs.get()()
            with self._lock:
                if self._idle >= self._keep:
                    return
                self._idle += 1


_WORKERS = _Workers()


def _after_fork() -> None:
    global _THREADS_LOCK
    _WORKERS._reset()
    _THREADS_LOCK = threading.Lock()  # the parent's threads, and their calls, are not here
    _THREADS.clear()


os.register_at_fork(after_in_child=_after_fork)


class _Hook:
    """A tool's reconcile hook: given when the tool is built, or attached once after
    (``@my_tool.reconciler``), so the tool itself stays frozen."""

    __slots__ = ("function",)

    def __init__(self, function: Reconciler | None) -> None:
        self.function = function


@dataclass(frozen=True, kw_only=True, eq=False)
class Tool:
    """A callable tool. Build one with :func:`tool`; offer it through a toolset
    (``Agent(tools=[...])`` makes one of plain tools)."""

    name: str
    description: str
    function: Callable[..., Any]
    args_model: type[BaseModel]
    context_param: str | None
    idempotent: bool
    timeout_s: float | None
    inline: bool = False
    fallback: str | None = None
    hook: _Hook = field(default_factory=lambda: _Hook(None), repr=False)

    @property
    def reconcile(self) -> Reconciler | None:
        """The ``reconcile(idempotency_key)`` hook, if the tool has one."""
        return self.hook.function

    @cached_property
    def definition(self) -> ToolDef:
        """The tool as a toolset offers it to the runtime."""
        return ToolDef(name=self.name, description=self.description,
                       args_model=self.args_model, idempotent=self.idempotent,
                       reconcilable=self.reconcile is not None, timeout_s=self.timeout_s,
                       fallback=self.fallback)

    @property
    def spec(self) -> ToolSpec:
        """What the model is told about the tool."""
        return self.definition.spec

    def validate(self, arguments: str) -> dict[str, Any]:
        """Parse and validate the model's JSON arguments.

        Raises:
            ModelBehaviorError: with a message precise enough for the model to repair.
        """
        return self.definition.validate(arguments)

    def validate_object(
        self, arguments: dict[str, Any], *, raw_text: str | None = None
    ) -> dict[str, Any]:
        """Validate already-parsed arguments (e.g. from a journaled intent)."""
        return self.definition.validate_object(arguments, raw_text=raw_text)

    def start(self, arguments: dict[str, Any], context: ToolContext
              ) -> asyncio.Future[ToolResult]:
        """Start the tool with validated ``arguments``; the future resolves to its result,
        or to what the tool raised, **only once the tool's code has stopped**.

        Cancelling the future stops an async tool at its next ``await``; a sync tool runs
        in a thread of its own that cannot be stopped from outside (it can stop itself:
        :meth:`ToolContext.raise_if_cancelled`): cancelling its future only stops
        waiting for it. The runtime sets ``context.cancel_event``, waits on the future
        without cancelling it (``asyncio.wait``), and so knows whether a call it gave up
        on still runs. Inline tools run to the end here.

        The future's exception is :class:`~tether.core.ToolError` if the result cannot be
        serialised, otherwise whatever the tool itself raised.
        """
        kwargs = dict(arguments)
        if self.context_param:
            kwargs[self.context_param] = context
        loop = asyncio.get_running_loop()
        if inspect.iscoroutinefunction(self.function):
            return loop.create_task(self._finish(self.function(**kwargs), context))
        future: asyncio.Future[ToolResult] = loop.create_future()
        if self.inline:
            try:
                future.set_result(self._serialize(self.function(**kwargs), context))
            except (Exception, SystemExit, asyncio.CancelledError) as e:
                future.set_exception(self._exited(e, context))
            return future

        def settle(result: ToolResult | None, error: BaseException | None) -> None:
            if future.done():
                return
            if error is None:
                future.set_result(cast(ToolResult, result))
            else:
                future.set_exception(error)

        key = (context.run_id, context.call_id)

        def work() -> None:
            try:
                try:
                    result = self._serialize(self.function(**kwargs), context)
                finally:
                    with _THREADS_LOCK:
                        _THREADS[key] -= 1
                        if not _THREADS[key]:
                            del _THREADS[key]
            except BaseException as e:  # handed to the loop, never lost in the thread
                outcome: tuple[ToolResult | None, BaseException | None] = (
                    None, self._exited(e, context))
            else:
                outcome = (result, None)
            try:
                loop.call_soon_threadsafe(settle, *outcome)
            except RuntimeError:  # the loop is closed: nobody waits for this call any more
                pass

        with _THREADS_LOCK:
            _THREADS[key] = _THREADS.get(key, 0) + 1
        _WORKERS.submit(work)
        return future

    async def _finish(self, value: Awaitable[Any], context: ToolContext) -> ToolResult:
        try:
            return self._serialize(await value, context)
        except SystemExit as e:
            raise self._exited(e, context) from e

    def _exited(self, error: BaseException, context: ToolContext) -> BaseException:
        """A tool's ``SystemExit`` (argparse on bad input, a CLI library), or a sync
        tool's ``CancelledError`` (nobody cancels a thread), as the tool's failure: it
        must not end the run, let alone the process."""
        if isinstance(error, SystemExit):
            what = f"SystemExit({error.code!r})"
        elif isinstance(error, asyncio.CancelledError):
            what = "CancelledError (it was not cancelled)"
        else:
            return error
        failure = ToolError(f"tool {self.name!r} raised {what}",
                            hint="a tool should raise an exception, not exit or cancel",
                            tool=self.name, call_id=context.call_id)
        failure.__cause__ = error
        return failure

    def _serialize(self, value: Any, context: ToolContext) -> ToolResult:
        try:
            return as_result(value)
        except pydantic_core.PydanticSerializationError as e:
            raise ToolError(
                f"tool {self.name!r} returned a {type(value).__name__}, which cannot be "
                f"serialised to JSON ({e})",
                hint="return a str, JSON-compatible values, a dataclass or a pydantic model",
                tool=self.name,
                call_id=context.call_id,
            ) from e

    async def invoke(self, arguments: dict[str, Any], context: ToolContext) -> str:
        """Run the tool with validated ``arguments`` to its end; return the text the
        model would see (handy in tests of a tool)."""
        return (await self.start(arguments, context)).text()

    async def run_reconcile(self, key: str) -> Any:
        """Ask the tool's ``reconcile`` hook whether the call with ``key`` took effect."""
        if self.reconcile is None:
            raise ToolDefinitionError(f"tool {self.name!r} has no reconcile hook")
        value = self.reconcile(key)
        if isinstance(value, Awaitable):
            value = await value
        return value

    def reconciler(self, function: R) -> R:
        """Attach a ``reconcile(idempotency_key)`` hook, once; usable as a decorator
        (the decorated function is returned as it is).

        The hook returns :data:`NOT_APPLIED` if the call did not take effect (it is then
        run), or the call's result if it did (which is recorded without running it).

        Raises:
            ToolDefinitionError: the tool already has a hook, or the runtime has
                already taken its definition (attach hooks where the tool is defined).
        """
        if self.hook.function is not None:
            raise ToolDefinitionError(f"tool {self.name!r} already has a reconcile hook",
                                      hint="give each tool one reconcile hook")
        if "definition" in self.__dict__:
            raise ToolDefinitionError(
                f"tool {self.name!r} was already offered to a run without a reconcile hook",
                hint="attach the hook right after the tool's definition")
        self.hook.function = function
        return function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (tests, reuse)."""
        return self.function(*args, **kwargs)


def _build(
    function: Callable[..., Any],
    *,
    name: str | None,
    description: str | None,
    idempotent: bool,
    reconcile: Reconciler | None,
    timeout_s: float | None,
    inline: bool,
    fallback: str | None,
) -> Tool:
    tool_name = name or function.__name__
    doc = docstring_parser.parse(inspect.getdoc(function) or "")
    param_docs = {p.arg_name: p.description for p in doc.params}
    try:
        hints = get_type_hints(function)
    except Exception as e:
        raise ToolDefinitionError(
            f"cannot resolve the type hints of tool {tool_name!r}: {e}",
            hint="make every annotation importable at module level",
        ) from e
    fields: dict[str, Any] = {}
    context_param = None
    for param in inspect.signature(function).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"tool {tool_name!r} takes *{param.name}; tools need named parameters",
                hint="list each argument explicitly",
            )
        annotation = hints.get(param.name)
        if annotation is ToolContext:
            context_param = param.name
            continue
        if annotation is None:
            raise ToolDefinitionError(
                f"parameter {param.name!r} of tool {tool_name!r} has no type annotation",
                hint="annotate it so the model gets a schema, e.g. `x: int`",
            )
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (annotation, Field(default, description=param_docs.get(param.name)))
    args_model = create_model(f"{tool_name}_arguments", __base__=_Args, **fields)
    text = description or "\n\n".join(
        part for part in (doc.short_description, doc.long_description) if part
    )
    return Tool(
        name=tool_name,
        description=text,
        function=function,
        args_model=args_model,
        context_param=context_param,
        idempotent=idempotent,
        hook=_Hook(reconcile),
        timeout_s=timeout_s,
        inline=inline,
        fallback=fallback,
    )


@overload
def tool(function: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    idempotent: bool = False,
    reconcile: Reconciler | None = None,
    timeout_s: float | None = None,
    inline: bool = False,
    fallback: str | None = None,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    function: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    idempotent: bool = False,
    reconcile: Reconciler | None = None,
    timeout_s: float | None = None,
    inline: bool = False,
    fallback: str | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a function into a :class:`Tool`.

    The JSON schema comes from the type hints, descriptions from the (Google-style)
    docstring. A parameter annotated :class:`ToolContext` receives the call's context
    and is hidden from the model.

    Args:
        function: The function, when used as ``@tool`` without parentheses.
        name: The tool's name for the model; defaults to the function's name.
        description: Overrides the docstring.
        idempotent: Running the call twice has the same effect as once. A call left in
            doubt by a crash is then simply run again with the same idempotency key.
        reconcile: For non-idempotent tools, ``reconcile(idempotency_key)`` decides a
            call in doubt (see :meth:`Tool.reconciler`). Without it, a call in doubt
            stops the run as ``needs_attention``.
        timeout_s: Seconds a call may take.
        inline: Run a sync function on the event loop's thread instead of a worker
            thread. Saves the thread hop (about 0.1 ms) for fast, non-blocking functions;
            never use it for I/O, which would stall every other task of the process.
        fallback: Name of another tool of the agent to call with the same arguments when
            this one fails for good (retries spent, or its circuit breaker open).
    """

    def wrap(f: Callable[..., Any]) -> Tool:
        if inline and inspect.iscoroutinefunction(f):
            raise ToolDefinitionError(
                f"tool {f.__name__!r} is async; inline applies to sync functions only",
                hint="drop inline=True",
            )
        return _build(f, name=name, description=description, idempotent=idempotent,
                      reconcile=reconcile, timeout_s=timeout_s, inline=inline,
                      fallback=fallback)

    return wrap(function) if function is not None else wrap
