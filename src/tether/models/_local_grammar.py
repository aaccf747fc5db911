"""Grammars that keep the local model's output valid *and finite*.

A grammar-constrained small model always produces something that parses, but only
if it stops: a 135M model can loop inside a string (``"at 3pm at 3pm at 3pm..."``),
an array or a free-form object until ``max_tokens``, which then leaves no valid
output at all. So every grammar the local provider uses is bounded:

- strings hold at most ``max_string_length`` characters, every other repetition
  (array items, free-form object members, pattern repeats) at most ``max_items``;
- free-form values (``{}``, ``{"type": "object"}`` without properties, arrays
  without ``items``) are JSON values nested at most :data:`ANY_DEPTH` deep;
- plain-text answers under a grammar are one paragraph of at most
  ``max_answer_length`` characters.

:func:`max_output_bytes` then computes the longest output the grammar admits. A
token is at least one byte, so a generation allowed that many tokens always ends
inside the grammar, on any CPU, whatever the model's numerics. Only a recursive
``$ref`` (a tree schema) is unbounded; there the token limit is the backstop.

Pure functions: the JSON-schema-to-GBNF converter is passed in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

#: How deep free-form JSON values may nest.
ANY_DEPTH = 2
#: Rule name of a plain-text answer in the grammars built here.
_ANSWER_RULE = "answer ::= [^{ \\t\\n\\x00] [^\\n\\x00]{0,%d}\n"

_SCALARS: list[dict[str, Any]] = [
    {"type": "string"},
    {"type": "number"},
    {"type": "boolean"},
    {"type": "null"},
]


def any_value(depth: int = ANY_DEPTH) -> dict[str, Any]:
    """A schema for any JSON value nested at most ``depth`` levels."""
    if depth <= 0:
        return {"anyOf": list(_SCALARS)}
    inner = any_value(depth - 1)
    return {
        "anyOf": [
            *_SCALARS,
            {"type": "array", "items": inner},
            {"type": "object", "additionalProperties": inner},
        ]
    }


_CHILD_KEYS = ("items", "additionalProperties", "not", "if", "then", "else")
_LIST_KEYS = ("anyOf", "oneOf", "allOf", "prefixItems")
_MAP_KEYS = ("properties", "$defs", "definitions")


def bound_schema(schema: Any, depth: int = ANY_DEPTH) -> Any:
    """``schema`` with its free-form parts replaced by depth-limited JSON values."""
    if not isinstance(schema, dict):
        return schema
    if not schema or set(schema) <= {"description", "title", "default", "examples"}:
        return {**schema, **any_value(depth)}
    kind = schema.get("type")
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _CHILD_KEYS and isinstance(value, dict):
            out[key] = bound_schema(value, depth)
        elif key in _LIST_KEYS and isinstance(value, list):
            out[key] = [bound_schema(v, depth) for v in value]
        elif key in _MAP_KEYS and isinstance(value, dict):
            out[key] = {k: bound_schema(v, depth) for k, v in value.items()}
        else:
            out[key] = value
    if kind == "object" and "properties" not in out and "additionalProperties" not in out:
        out["additionalProperties"] = any_value(depth - 1)
    elif out.get("additionalProperties") is True:
        out["additionalProperties"] = any_value(depth - 1)
    if kind == "array" and "items" not in out and "prefixItems" not in out:
        out["items"] = any_value(depth - 1)
    return out


def bound_repetitions(grammar: str, *, max_string_length: int, max_items: int) -> str:
    """Replace every unbounded ``*`` / ``+`` in a GBNF grammar by a bounded repeat.

    A repeated ``char`` (a JSON string's character) gets ``max_string_length``;
    anything else ``max_items``. Quoted literals and character classes are left alone.
    """
    out: list[str] = []
    i, n = 0, len(grammar)
    while i < n:
        c = grammar[i]
        if c in '"[':
            close = '"' if c == '"' else "]"
            j = i + 1
            while j < n and grammar[j] != close:
                j += 2 if grammar[j] == "\\" else 1
            out.append(grammar[i : j + 1])
            i = j + 1
            continue
        if c in "*+":
            previous = "".join(out).rstrip()
            limit = max_string_length if re.search(r"\bchar$", previous) else max_items
            out.append(f"{{{0 if c == '*' else 1},{limit}}}")
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _tidy(grammar: str) -> str:
    # JSON forbids raw control characters in strings; forbidding them also stops a
    # small model from running a string on over many lines.
    return grammar.replace('char ::= [^"\\\\]', 'char ::= [^"\\\\\\x00-\\x1F]')


def json_grammar(
    schema: dict[str, Any],
    convert: Callable[[str], str],
    *,
    max_string_length: int,
    max_items: int,
) -> str:
    """A bounded GBNF grammar for JSON following ``schema``; ``convert`` is llama.cpp's
    ``json_schema_to_gbnf``."""
    text = _tidy(convert(json.dumps(bound_schema(schema))))
    return bound_repetitions(text, max_string_length=max_string_length, max_items=max_items)


def bound_answer_string(grammar: str, *, max_answer_length: int) -> str:
    """Let the ``"answer"`` string of a ``{"answer": ...}`` alternative (see
    ``_local_prompt.ANSWER_OBJECT``) hold ``max_answer_length`` characters rather
    than ``max_string_length``."""
    text, count = re.subn(
        r'^(\S+-answer-kv ::= "\\"answer\\"" space ":" space )string$',
        r"\1answer-text",
        grammar,
        flags=re.M,
    )
    if not count:
        return grammar
    # A character class, not the ``char`` rule: repeating an alternation of sequences
    # hundreds of times makes llama.cpp's grammar sampler very slow.
    return text + (
        f'\nanswer-text ::= "\\"" [^"\\\\\\x00-\\x1F]{{0,{max_answer_length}}} "\\"" space\n'
    )


def answer_grammar(*, max_answer_length: int) -> str:
    """A plain-text answer, one paragraph of at most ``max_answer_length`` characters."""
    return "root ::= answer\n" + _ANSWER_RULE % (max_answer_length - 1)


# -- the longest output a grammar admits --------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<literal>"(?:\\.|[^"\\])*")
      | (?P<cls>\[(?:\\.|[^\]\\])*\])
      | (?P<name>[a-zA-Z0-9_-]+)
      | (?P<brace>\{\s*\d*\s*(?:,\s*\d*\s*)?\})
      | (?P<op>[()|*+?.])
    )""",
    re.VERBOSE,
)
_INFINITE = float("inf")


def _literal_bytes(literal: str) -> int:
    body = literal[1:-1]
    # Escapes (\n, \", \xHH, \uHHHH) stand for one character of at most 4 bytes.
    size = 0
    i = 0
    while i < len(body):
        if body[i] == "\\":
            i += 2
            while i < len(body) and re.match(r"[0-9a-fA-F]", body[i]) and body[i - 1] in "xuU":
                i += 1
            size += 4
        else:
            size += len(body[i].encode("utf-8"))
            i += 1
    return size


def _class_bytes(cls: str) -> int:
    body = cls[1:-1]
    if body.startswith("^") or "\\u" in body or "\\U" in body or any(ord(ch) > 127 for ch in body):
        return 4  # one UTF-8 character
    return 1


def max_output_bytes(grammar: str) -> float:
    """The most bytes an output of ``grammar`` (GBNF, root rule ``root``) can have;
    ``inf`` when unbounded (an unbounded repeat or a recursive rule)."""
    rules: dict[str, str] = {}
    for match in re.finditer(
        r"^([a-zA-Z0-9_-]+)\s*::=(.*?)(?=^[a-zA-Z0-9_-]+\s*::=|\Z)", grammar, re.M | re.S
    ):
        rules[match.group(1)] = match.group(2)
    return _Bound(rules).rule("root")


class _Bound:
    """The most bytes each rule of a grammar can produce, by recursive descent over its
    tokens; a rule reached again while being measured (recursion) is unbounded."""

    def __init__(self, rules: dict[str, str]) -> None:
        self.rules = rules
        self.memo: dict[str, float] = {}
        self.visiting: set[str] = set()

    def rule(self, name: str) -> float:
        if name in self.memo:
            return self.memo[name]
        if name in self.visiting or name not in self.rules:
            return _INFINITE
        self.visiting.add(name)
        tokens = [m for m in _TOKEN.finditer(self.rules[name])]
        value, _ = self.alternatives(tokens, 0)
        self.visiting.discard(name)
        self.memo[name] = value
        return value

    def alternatives(self, tokens: list[re.Match[str]], i: int) -> tuple[float, int]:
        best, i = self.sequence(tokens, i)
        while i < len(tokens) and tokens[i].group("op") == "|":
            value, i = self.sequence(tokens, i + 1)
            best = max(best, value)
        return best, i

    def sequence(self, tokens: list[re.Match[str]], i: int) -> tuple[float, int]:
        total = 0.0
        while i < len(tokens):
            if tokens[i].group("op") in ("|", ")"):
                break
            value, i = self.atom(tokens, i)
            value, i = _repeated(value, tokens, i)
            total += value
        return total, i

    def atom(self, tokens: list[re.Match[str]], i: int) -> tuple[float, int]:
        """The bound of the group, literal, class, rule or ``.`` at ``i``, and the index
        after it."""
        token = tokens[i]
        op = token.group("op")
        if op == "(":
            value, i = self.alternatives(tokens, i + 1)
            return value, i + 1  # the closing parenthesis
        if token.group("literal"):
            return _literal_bytes(token.group("literal")), i + 1
        if token.group("cls"):
            return _class_bytes(token.group("cls")), i + 1
        if token.group("name"):
            return self.rule(token.group("name")), i + 1
        if op == ".":
            return 4, i + 1
        raise ValueError(f"unexpected {token.group(0)!r} in grammar")


def _repeated(value: float, tokens: list[re.Match[str]], i: int) -> tuple[float, int]:
    """``value`` under the repeat suffix at ``i`` (``*``, ``+``, ``?``, ``{m,n}``), if
    there is one, and the index after it."""
    if i >= len(tokens):
        return value, i
    suffix = tokens[i]
    if suffix.group("op") in ("*", "+"):
        return (_INFINITE if value else 0.0), i + 1
    if suffix.group("op") == "?":
        return value, i + 1
    if suffix.group("brace"):
        upper = suffix.group("brace")[1:-1].split(",")[-1].strip()
        return (value * int(upper) if upper else (_INFINITE if value else 0.0)), i + 1
    return value, i
