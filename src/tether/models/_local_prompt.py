"""How the local provider asks a small model for tool calls: prompt, grammar, parsing.

Pure functions, no llama.cpp: :mod:`._local` renders the messages with the model's
own chat template and turns the JSON schemas here into a GBNF grammar.

The design was chosen by experiment with SmolLM2-135M-Instruct (see
``docs/models.md``):

- A tool call is the JSON object ``{"tool": NAME, "arguments": {...}}``, and the
  grammar admits exactly the declared tools, each with its own argument schema
  (``oneOf``), so the output always parses and always names a real tool.
- The system prompt lists the tools as ``- name: description`` lines, most relevant
  first (by word overlap with the latest user message), then one line saying how to
  call. Listing signatures or asking for the tool name alone did worse.
- *Phased* tool use (the default): a turn that ends with a user message must call a
  tool; a turn that ends with tool results must answer in plain text, with the tool
  results shown to the model as ``tool`` turns and a one-line instruction to answer
  from them in a full sentence (without it the model tends to echo the raw result).
  A 135M model cannot reliably decide between calling and answering, but it answers
  well once it sees a result.
  ``tool_mode="choice"`` lets the grammar admit either, for larger models.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from ..core import FatalModelError, Message, ModelBehaviorError, ToolCall, ToolSpec
from ._protocol import ModelRequest

ToolMode = Literal["phased", "choice"]
Mode = Literal["tool", "answer", "choice"]

_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = frozenset(
    {
        "the", "what", "whats", "is", "a", "an", "in", "of", "for", "to", "and", "or",
        "get", "it", "me", "my", "please", "can", "you", "how", "with", "this", "that",
        "current", "return", "returns", "given", "be", "are", "on", "at", "by", "from",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class LocalPlan:
    """What to ask the model for, and how to read its answer."""

    mode: Mode
    #: Chat messages (``role``/``content``) for the model's chat template.
    messages: list[dict[str, str]]
    #: The tools the grammar admits, in prompt order.
    tools: tuple[ToolSpec, ...] = ()
    #: JSON schema of one tool call object (modes ``tool`` and ``choice``).
    call_schema: dict[str, Any] | None = None
    #: JSON schema the answer must follow (mode ``answer`` with structured output).
    answer_schema: dict[str, Any] | None = None
    #: Whether a plain-text answer is held to a grammar (one bounded paragraph).
    bounded_answer: bool = False

    @property
    def constraint(self) -> str | None:
        """What constrains the output, as reported in ``ModelResponse.constraint``."""
        if self.mode == "tool":
            return "grammar:tool_only"
        if self.mode == "choice":
            return "grammar:tool_or_answer"
        if self.answer_schema is not None:
            return "grammar:json_schema"
        return "grammar:answer_only" if self.bounded_answer else None


def plan_request(
    request: ModelRequest, *, tool_mode: ToolMode = "phased", narrow: bool = True
) -> LocalPlan:
    """Decide the mode of this turn and build its messages and schemas.

    ``ModelSettings.tool_choice`` wins over ``tool_mode``: ``"none"`` answers,
    ``"required"`` calls some tool, a tool's name calls that tool.

    Raises:
        FatalModelError: ``tool_choice`` names a tool the request does not offer.
    """
    settings = request.settings
    tools = request.tools
    choice = settings.tool_choice
    if choice not in (None, "auto", "required", "none"):
        tools = tuple(t for t in request.tools if t.name == choice)
        if not tools:
            raise FatalModelError(
                f"tool_choice names {choice!r}, which is not among the request's tools",
                hint="pass one of the agent's tool names, or 'auto'",
                provider="local",
            )
    mode: Mode
    if not tools or choice == "none":
        mode = "answer"
    elif choice is not None and choice != "auto":
        mode = "tool"
    elif tool_mode == "choice" and settings.output_schema is None:
        mode = "choice"
        if narrow:
            # The first tool the request names that has not run yet, with numbers
            # taken from the conversation; nothing left means answer.
            pending = pending_tools(request.messages, tools)[:1]
            numbers = available_numbers(request.messages)
            tools = tuple(ground_numbers(t, numbers) for t in pending)
            if not tools:
                mode = "answer"
    else:
        mode = "answer" if _ends_with_tool_results(request.messages) else "tool"
    if mode == "answer":
        render = _render_steps if tool_mode == "choice" and request.tools else _render
        return LocalPlan(
            mode="answer",
            messages=render(request.messages, None, mode),
            answer_schema=settings.output_schema,
            bounded_answer=bool(request.tools),
        )
    text = _latest_user_text(request.messages)
    ranked = rank_tools(tools, text)
    allowed = ranked
    if narrow and mode == "tool" and choice in (None, "auto", "required"):
        allowed = narrow_tools(ranked, text)
    schema = call_schema(allowed)
    if mode == "choice":
        schema = {"oneOf": [*schema.pop("oneOf", [schema]), ANSWER_OBJECT], **schema}
    return LocalPlan(
        mode=mode,
        messages=(_render_steps if mode == "choice" else _render)(
            request.messages, rank_tools(request.tools, text), mode
        ),
        tools=allowed,
        call_schema=schema,
    )


#: The answer alternative of a ``choice`` turn: ``{"answer": "..."}``.
ANSWER_OBJECT: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
}


def pending_tools(
    messages: tuple[Message, ...], tools: tuple[ToolSpec, ...]
) -> tuple[ToolSpec, ...]:
    """The tools the latest user message still points to, for a ``choice`` turn.

    A tool is *pending* when the user's words name it (its name, description or
    parameters share a word with the message) and it has not been called since that
    message. Pending tools come in the order the message first mentions them.
    """
    called = {c.name for c in _calls_since_user(messages)}
    words = _word_list(_latest_user_text(messages))
    order = {word: i for i, word in reversed(list(enumerate(words)))}
    mentions = []
    for tool in tools:
        shared = [order[w] for w in _tool_words(tool) if w in order]
        if shared and tool.name not in called:
            mentions.append((min(shared), tool))
    mentions.sort(key=lambda item: item[0])
    return tuple(tool for _, tool in mentions)


def _calls_since_user(messages: tuple[Message, ...]) -> list[ToolCall]:
    start = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    return [c for m in messages[start + 1 :] if m.role == "assistant" for c in m.tool_calls]


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.]*\d)")


def _number(text: str) -> float | int | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def available_numbers(messages: tuple[Message, ...]) -> list[float | int]:
    """The numbers in play for a ``choice`` turn, in reading order.

    The numbers of the latest user message; each call since then takes the numbers it
    was passed out of play, and its numeric result takes the place of the first of
    them (so "3 times 4 plus 2" is ``[3, 4, 2]``, then ``[12, 2]`` once
    ``multiply(3, 4)`` returned 12). A 135M model cannot compute, but it picks
    operands well when the grammar offers only the ones next in line.
    """
    pool: list[float | int] = []
    for match in _NUMBER.finditer(_latest_user_text(messages)):
        value = _number(match.group(0))
        if value is not None:
            pool.append(value)
    results = {m.tool_call_id: m.content or "" for m in messages if m.role == "tool"}
    for call in _calls_since_user(messages):
        arguments = _arguments(call)
        slot = len(pool)
        for value in arguments.values() if isinstance(arguments, dict) else ():
            if isinstance(value, int | float) and not isinstance(value, bool) and value in pool:
                index = pool.index(value)
                slot = min(slot, index)
                del pool[index]
        result = _number(results.get(call.id, ""))
        if result is not None:
            pool.insert(min(slot, len(pool)), result)
    return pool


def ground_numbers(tool: ToolSpec, numbers: list[float | int]) -> ToolSpec:
    """``tool`` with its top-level numeric parameters limited to the next numbers in
    play: as many of the first ``numbers`` as it has numeric parameters."""
    properties = tool.parameters.get("properties")
    if not numbers or not isinstance(properties, dict):
        return tool
    numeric = [
        name
        for name, schema in properties.items()
        if isinstance(schema, dict)
        and schema.get("type") in ("number", "integer")
        and "enum" not in schema
        and "const" not in schema
    ]
    window = numbers[: len(numeric)]
    if len(numeric) > 1 and len(window) == len(numeric) <= 3:
        # Each number in the window is used once: one alternative per ordering.
        orderings = list(dict.fromkeys(itertools.permutations(window)))
        alternatives = []
        for ordering in orderings:
            if all(
                isinstance(v, int) or properties[k]["type"] == "number"
                for k, v in zip(numeric, ordering, strict=True)
            ):
                fixed = {k: {"const": v} for k, v in zip(numeric, ordering, strict=True)}
                alternatives.append({**tool.parameters, "properties": {**properties, **fixed}})
        if alternatives:
            parameters = {"type": "object", "oneOf": alternatives}
            return tool.model_copy(update={"parameters": parameters})
    grounded = dict(properties)
    for name in numeric:
        kind = properties[name]["type"]
        allowed = [n for n in numbers if kind == "number" or isinstance(n, int)]
        allowed = list(dict.fromkeys(allowed[: len(numeric)]))
        if allowed:
            grounded[name] = {"enum": allowed}
    return tool.model_copy(update={"parameters": {**tool.parameters, "properties": grounded}})


def _ends_with_tool_results(messages: tuple[Message, ...]) -> bool:
    for message in reversed(messages):
        if message.role == "system":
            continue
        return message.role == "tool"
    return False


def _latest_user_text(messages: tuple[Message, ...]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return message.content or ""
    return ""


def _word_list(text: str) -> list[str]:
    # Four-letter prefixes stand in for stemming: "raining"/"rain", "adds"/"add".
    words = _WORD.findall(text.lower().replace("_", " "))
    return [w[:4] for w in words if w not in _STOP_WORDS]


def _words(text: str) -> set[str]:
    return set(_word_list(text))


def rank_tools(tools: tuple[ToolSpec, ...], text: str) -> tuple[ToolSpec, ...]:
    """``tools`` ordered by word overlap with ``text``, most relevant first (stable)."""
    wanted = _words(text)
    if not wanted or len(tools) < 2:
        return tools

    return tuple(sorted(tools, key=lambda t: -len(wanted & _tool_words(t))))


def narrow_tools(tools: tuple[ToolSpec, ...], text: str) -> tuple[ToolSpec, ...]:
    """The one tool whose words ``text`` uses most, if exactly one does; else ``tools``."""
    wanted = _words(text)
    if not wanted or len(tools) < 2:
        return tools
    scores = [(len(wanted & _tool_words(t)), t) for t in tools]
    best = max(score for score, _ in scores)
    winners = [t for score, t in scores if score == best]
    return (winners[0],) if best > 0 and len(winners) == 1 else tools


def _tool_words(tool: ToolSpec) -> set[str]:
    properties = tool.parameters.get("properties", {})
    names = " ".join(properties) if isinstance(properties, dict) else ""
    return _words(f"{tool.name} {tool.description} {names}")


def _tool_lines(tools: tuple[ToolSpec, ...]) -> str:
    lines = []
    for tool in tools:
        description = " ".join(tool.description.split())
        lines.append(f"- {tool.name}: {description}" if description else f"- {tool.name}")
    return "\n".join(lines)


def _render(
    messages: tuple[Message, ...], tools: tuple[ToolSpec, ...] | None, mode: Mode
) -> list[dict[str, str]]:
    instructions = "\n\n".join(m.content or "" for m in messages if m.role == "system").strip()
    if tools and mode == "choice":
        how = (
            'To call a tool, reply only with JSON: {"tool": <tool name>, "arguments": {...}}. '
            "Otherwise answer normally."
        )
        tool_text = f"You answer by calling one of these tools:\n{_tool_lines(tools)}\n{how}"
        instructions = f"{instructions}\n\n{tool_text}" if instructions else tool_text
    elif tools:
        how = 'Reply only with JSON: {"tool": <tool name>, "arguments": {...}}'
        tool_text = f"You answer by calling one of these tools:\n{_tool_lines(tools)}\n{how}"
        instructions = f"{instructions}\n\n{tool_text}" if instructions else tool_text
    elif any(m.role == "tool" for m in messages):
        answer_text = "Answer the user's question in one full sentence, using the tool results."
        instructions = f"{instructions}\n\n{answer_text}" if instructions else answer_text
    rendered: list[dict[str, str]] = []
    if instructions:
        rendered.append({"role": "system", "content": instructions})
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "assistant":
            parts = [message.content] if message.content else []
            parts += [
                json.dumps({"tool": c.name, "arguments": _arguments(c)}) for c in message.tool_calls
            ]
            rendered.append({"role": "assistant", "content": "\n".join(parts)})
        elif message.role == "tool":
            rendered.append({"role": "tool", "content": message.content or ""})
        else:
            rendered.append({"role": "user", "content": message.content or ""})
    return rendered


def _call_text(call: ToolCall) -> str:
    arguments = _arguments(call)
    if isinstance(arguments, dict):
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in arguments.items())
        return f"{call.name}({shown})"
    return f"{call.name}({arguments})"


def _render_steps(
    messages: tuple[Message, ...], tools: tuple[ToolSpec, ...] | None, mode: Mode
) -> list[dict[str, str]]:
    """Messages for a ``choice`` turn, or the answer that ends a run of them.

    The calls made since the latest user message and their results are folded into
    that message as ``name(arguments) = result`` lines: SmolLM2-135M reads them there
    far better than as ``tool`` turns, and then states the result in its answer.
    """
    start = max((i for i, m in enumerate(messages) if m.role == "user"), default=len(messages))
    rendered = _render(messages[:start], None, "answer")
    instructions = "\n\n".join(m.content or "" for m in messages if m.role == "system").strip()
    if tools:
        how = (
            'Reply only with JSON: {"tool": <tool name>, "arguments": {...}} to call a tool, '
            'or {"answer": <one full sentence>} when no tool is needed or the tool results '
            "answer the question."
        )
        tool_text = f"You can call these tools:\n{_tool_lines(tools)}\n{how}"
        instructions = f"{instructions}\n\n{tool_text}" if instructions else tool_text
    rendered = [m for m in rendered if m["role"] != "system"]
    if instructions:
        rendered.insert(0, {"role": "system", "content": instructions})
    results: dict[str, str] = {
        m.tool_call_id or "": m.content or "" for m in messages[start:] if m.role == "tool"
    }
    lines = [
        f"{_call_text(c)} = {results.get(c.id, '(no result)')}"
        for m in messages[start:]
        if m.role == "assistant"
        for c in m.tool_calls
    ]
    question = messages[start].content or "" if start < len(messages) else ""
    if lines:
        ask = (
            "Call the next tool, or answer the question."
            if mode == "choice"
            else "Answer the question in one full sentence that states the result."
        )
        question = f"{question}\n\nTool results:\n" + "\n".join(lines) + f"\n\n{ask}"
    rendered.append({"role": "user", "content": question})
    return rendered


def _arguments(call: ToolCall) -> Any:
    try:
        return json.loads(call.arguments or "{}")
    except ValueError:
        return call.arguments


def call_schema(tools: tuple[ToolSpec, ...]) -> dict[str, Any]:
    """JSON schema of ``{"tool": NAME, "arguments": {...}}`` for one of ``tools``.

    Each tool's ``$defs`` are lifted to the root under a per-tool prefix (and its
    ``$ref``s rewritten), so the nested schemas still resolve.
    """
    definitions: dict[str, Any] = {}
    alternatives: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        parameters: dict[str, Any] = dict(tool.parameters)
        local_defs = parameters.pop("$defs", None) or parameters.pop("definitions", None) or {}
        prefix = f"t{index}_"
        for name, definition in local_defs.items():
            definitions[prefix + name] = _rewrite_refs(definition, prefix)
        parameters = _rewrite_refs(parameters, prefix)
        if parameters.get("type") is None and "properties" not in parameters:
            parameters = {"type": "object", "properties": {}}
        alternatives.append(
            {
                "type": "object",
                "properties": {"tool": {"const": tool.name}, "arguments": parameters},
                "required": ["tool", "arguments"],
            }
        )
    result = alternatives[0] if len(alternatives) == 1 else {"oneOf": alternatives}
    if definitions:
        result = {**result, "$defs": definitions}
    return result


def _rewrite_refs(node: Any, prefix: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                for root in ("#/$defs/", "#/definitions/"):
                    if value.startswith(root):
                        value = "#/$defs/" + prefix + value[len(root) :]
                out[key] = value
            else:
                out[key] = _rewrite_refs(value, prefix)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, prefix) for v in node]
    return node


def parse_output(
    text: str, plan: LocalPlan, *, step: int, provider: str, model: str
) -> tuple[str | None, list[ToolCall]]:
    """Split the model's output into answer text and tool calls.

    Raises:
        ModelBehaviorError: a tool-call turn whose output is not a valid call (only
            possible when generation stopped at ``max_tokens``).
    """
    stripped = text.strip()
    if plan.mode == "answer":
        return stripped or None, []
    try:
        value = json.loads(stripped)
        if plan.mode == "choice" and isinstance(value, dict) and "answer" in value:
            return str(value["answer"]).strip() or None, []
        name = value["tool"]
        arguments = value["arguments"]
    except (ValueError, KeyError, TypeError) as e:
        raise ModelBehaviorError(
            f"{provider} model {model!r} produced an incomplete tool call",
            hint="raise ModelSettings.max_tokens",
            provider=provider,
            model=model,
            output=text,
        ) from e
    call = ToolCall(id=f"call_{step}_0", name=str(name), arguments=json.dumps(arguments))
    return None, [call]
