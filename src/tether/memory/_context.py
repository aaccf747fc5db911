"""The context builder: what goes into the next prompt, under a token budget.

Pure and deterministic: no clock, no randomness, no model call, no I/O. The same
inputs give byte-identical messages, and the returned recipe (plain JSON) together
with the same sources rebuilds them exactly (:meth:`ContextBuilder.replay`).

The prompt, in order: a system message (instructions, then pinned facts); the task;
a note when old turns are left out; the conversation's turns (older ones masked:
tool results and long assistant texts become a preview plus a handle); and, last,
the memories retrieved for this step (last, so the prefix before them stays
cacheable while they change).

Turns (an assistant message with the tool results that answer it, or a user
message) are never split. Masking and dropping move in whole batches of turns
from the start (``batch_turns``), so the prompt's prefix only changes once per
batch: a provider's prompt cache keeps hitting between those cut points.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core import Message
from ._errors import ContextBudgetError
from ._tokens import (
    MESSAGE_OVERHEAD,
    CachedCounter,
    EstimateTokenCounter,
    TokenCounter,
    message_tokens,
)
from ._types import Hit, Memory, Namespace

RECIPE_VERSION = 1
#: Tools whose result is a text the model asked to read whole (memory's ``expand``):
#: never masked for its size while its turn is recent, only to fit the budget.
EXPAND_TOOLS = frozenset({"expand"})
#: Tokens a chat template adds around each declared tool.
TOOL_OVERHEAD = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextPart:
    """One part of a built prompt and what it costs (journaled in ``context.built``)."""

    name: str
    messages: int
    tokens: int

    def to_dict(self) -> dict[str, Any]:
        """The part as journaled in ``context.built``'s ``parts``."""
        return {"name": self.name, "messages": self.messages, "tokens": self.tokens}


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltContext:
    """A built prompt: the messages, their parts, and the recipe that rebuilds them."""

    messages: tuple[Message, ...]
    parts: tuple[ContextPart, ...]
    tokens: int
    budget: int
    recipe: dict[str, Any] = field(default_factory=dict)

    def to_payload(self) -> dict[str, Any]:
        """The ``context.built`` event payload: parts, totals and the recipe."""
        return {"tokens": self.tokens, "budget": self.budget,
                "parts": [p.to_dict() for p in self.parts], "recipe": self.recipe}


def _handle(handles: Mapping[str, str], message: Message, ref: str) -> str:
    """The handle a masked message shows: its ref's (refs are unique across the runs of
    a thread), else its tool call id's (unique only within a run), else the ref."""
    return handles.get(ref) or handles.get(message.tool_call_id or "", ref)


def _turn_bounds(history: Sequence[Message]) -> list[tuple[int, int]]:
    """``[start, end)`` of each turn: a user or assistant message and the tool
    messages that follow it."""
    bounds: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(history) + 1):
        if i == len(history) or history[i].role != "tool":
            bounds.append((start, i))
            start = i
    return bounds


class ContextBuilder:
    """Builds prompts under a token budget.

    Args:
        budget: Most tokens a prompt may have (default 8,000).
        counter: Token counter; defaults to :class:`EstimateTokenCounter` (pass
            :func:`~tether.memory.default_counter` for the local model's tokenizer).
        keep_recent_turns: Turns kept whole when the budget allows.
        batch_turns: Masking moves in steps of this many turns, dropping in steps of
            four times as many.
        preview_chars: Characters of a masked message kept as its preview.
        large_result_tokens: A tool result above this is always shown as a preview
            and a handle (store it in memory with :func:`offload_large_results`).
        memory_tokens: Most tokens the retrieved memories may take.
        summary_tokens: With more than 0, the note standing for dropped turns also
            lists what the most recent of them did, extracted (no model call): each
            turn's text, calls and the start of their results with the handle that
            ``expand`` takes, within this many tokens (at most a quarter of the
            budget). 0 (default): a bare note.
    """

    def __init__(
        self,
        *,
        budget: int = 8000,
        counter: TokenCounter | None = None,
        keep_recent_turns: int = 8,
        batch_turns: int = 8,
        preview_chars: int = 160,
        large_result_tokens: int = 1000,
        memory_tokens: int = 1500,
        summary_tokens: int = 0,
    ) -> None:
        if budget <= 0 or batch_turns <= 0 or keep_recent_turns < 0:
            raise ContextBudgetError("budget and batch_turns must be positive",
                                     hint="e.g. ContextBuilder(budget=8000, batch_turns=8)")
        self.budget = budget
        self.counter = CachedCounter(counter or EstimateTokenCounter())
        self.keep_recent_turns = keep_recent_turns
        self.batch_turns = batch_turns
        self.preview_chars = preview_chars
        self.large_result_tokens = large_result_tokens
        self.memory_tokens = memory_tokens
        self.summary_tokens = min(max(0, summary_tokens), budget // 4)
        self._digests: dict[tuple[int, str, int], str] = {}
        self.drop_batch_turns = 4 * batch_turns
        self._turn_cache: dict[tuple[int, int, int], Any] = {}
        self._last: Any = None
        self._refs: list[str] = []

    # -- rendering ------------------------------------------------------------------

    def _tokens(self, message: Message) -> int:
        return message_tokens(message, self.counter.count)

    def _mask_text(self, message: Message, handle: str) -> str:
        text = message.content or ""
        preview = text[: self.preview_chars].replace("\n", " ")
        more = "…" if len(text) > self.preview_chars else ""
        if message.role == "tool" and message.name in EXPAND_TOOLS:
            return (f"[masked again: an expanded text of {len(text)} characters, shown "
                    f"whole in the prompt after the expand, masked since to fit; preview: "
                    f"{preview}{more} | expand(handle={handle!r}) shows it whole again]")
        return (f"[masked {message.role} output, {len(text)} characters; preview: "
                f"{preview}{more} | full text: expand(handle={handle!r})]")

    def _masks(self, message: Message, masked: bool) -> bool:
        """Whether ``message`` shows as a preview: large tool results always, except an
        ``expand``'s (an explicit request to read a text: whole while its turn is
        recent and the prompt fits); when the turn is masked, tool results and long
        assistant texts."""
        if message.role == "tool":
            if masked:
                return True
            if message.name in EXPAND_TOOLS:  # asked for whole: shown whole while recent
                return False
            text = message.content or ""
            # no token has more than 8 characters in practice: skip counting huge texts
            return len(text) > 8 * self.large_result_tokens or \
                self.counter.count(text) > self.large_result_tokens
        return masked and message.role == "assistant" and \
            len(message.content or "") > self.preview_chars + 80

    def _render_turn(self, history: Sequence[Message], bounds: tuple[int, int],
                     refs: Sequence[str], handles: Mapping[str, str], masked: bool
                     ) -> list[Message]:
        out = []
        for i in range(*bounds):
            m = history[i]
            if self._masks(m, masked):
                handle = _handle(handles, m, refs[i])
                m = m.model_copy(update={"content": self._mask_text(m, handle)})
            out.append(m)
        return out

    def _default_refs(self, n: int) -> list[str]:
        while len(self._refs) < n:
            self._refs.append(f"msg:{len(self._refs)}")
        return self._refs[:n]

    def _prefix_sums(self, history: Sequence[Message], refs: list[str],
                     handles: dict[str, str]) -> tuple[list[tuple[int, int]], list[int], list[int]]:
        """Turn bounds and prefix sums of their costs (whole, masked). When ``history``
        extends the previous build's (same message objects, refs and handles), only
        the turns from the previous last one on are computed again."""
        start_turn = 0
        last = self._last
        if last is not None:
            old_hist, old_refs, old_handles, old_bounds, old_full, old_mask = last
            keep = len(old_bounds) - 1  # the last turn may have grown
            cut = old_bounds[keep][0] if keep >= 0 else 0
            if (len(history) >= len(old_hist) and refs[:cut] == old_refs[:cut]
                    and all(handles.get(k) == v for k, v in old_handles.items())
                    and old_hist[:cut] == list(history[:cut])):  # identity first, in C
                start_turn = keep
        if start_turn > 0 and last is not None:
            bounds = last[3][:start_turn]
            full, mask = last[4][:start_turn + 1], last[5][:start_turn + 1]
            offset = bounds[-1][1]
        else:
            bounds, full, mask, offset = [], [0], [0], 0
        for b0, b1 in _turn_bounds(history[offset:]):
            b = (b0 + offset, b1 + offset)
            whole, masked = self._cached_turn_cost(history, b, refs, handles)
            bounds.append(b)
            full.append(full[-1] + whole)
            mask.append(mask[-1] + masked)
        self._last = (list(history), refs, dict(handles), bounds, full, mask)
        return bounds, full, mask

    def _cached_turn_cost(self, history: Sequence[Message], bounds: tuple[int, int],
                          refs: Sequence[str], handles: Mapping[str, str]) -> tuple[int, int]:
        """Costs of a turn whole and masked, remembered across builds: a run's turns
        are the same message objects from step to step (the cache holds them, so their
        ids cannot be reused while cached)."""
        start, end = bounds
        key = (id(history[start]), id(history[end - 1]), end - start)
        turn = tuple(history[start:end])
        names = (tuple(refs[start:end]),
                 tuple(_handle(handles, m, r) for m, r in zip(turn, refs[start:end],
                                                              strict=True)))
        hit = self._turn_cache.get(key)
        if hit is not None and hit[0] == names and all(
                a is b for a, b in zip(hit[1], turn, strict=True)):
            cached: tuple[int, int] = hit[2]
            return cached
        costs = (self._turn_cost(history, bounds, refs, handles, False),
                 self._turn_cost(history, bounds, refs, handles, True))
        if len(self._turn_cache) >= 100_000:
            self._turn_cache.pop(next(iter(self._turn_cache)))
        self._turn_cache[key] = (names, turn, costs)
        return costs

    def _turn_cost(self, history: Sequence[Message], bounds: tuple[int, int],
                   refs: Sequence[str], handles: Mapping[str, str], masked: bool) -> int:
        """What :meth:`_render_turn` would cost, without building messages."""
        count = self.counter.count
        total = 0
        for i in range(*bounds):
            m = history[i]
            if self._masks(m, masked):
                handle = _handle(handles, m, refs[i])
                total += MESSAGE_OVERHEAD + count(self._mask_text(m, handle))
                total += sum(count(c.name) + count(c.arguments) + 3 for c in m.tool_calls)
            else:
                total += message_tokens(m, count)
        return total

    def _memory_message(self, memories: Sequence[Memory]) -> Message | None:
        if not memories:
            return None
        lines = [f"- [{m.handle}] {m.text}" for m in memories]
        return Message.user("Relevant memories (from long-term memory; expand(handle) "
                            "gives a memory's full text):\n" + "\n".join(lines))

    def _note(self, dropped: int, digest: str = "") -> Message:
        text = (f"[The first {dropped} turns of this conversation are left out to fit "
                "the context; they are kept in the journal and in long-term memory: use "
                "recall(query) to look something up.]")
        if digest:
            text += ("\nWhat the latest of them did (extracted, oldest first):\n" + digest)
        return Message.user(text)

    def _dropped_note(self, dropped: int, history: Sequence[Message],
                      bounds: Sequence[tuple[int, int]], refs: Sequence[str],
                      handles: Mapping[str, str], summary_tokens: int) -> Message:
        """The note for ``dropped`` turns: with ``summary_tokens``, and a digest of the
        most recent of them. A function of the dropped turns only, so it changes only
        at a cut point (the prompt prefix stays cacheable between them)."""
        if summary_tokens <= 0 or dropped <= 0:
            return self._note(dropped)
        last = bounds[dropped - 1][1] - 1
        key = (dropped, refs[last], summary_tokens)
        digest = self._digests.get(key)
        if digest is None:
            lines: list[tuple[str, int]] = []  # newest first, with their cost
            used = 0
            for t in range(dropped - 1, -1, -1):
                line = self._digest_line(history, bounds[t], refs, handles, t)
                cost = self.counter.count(line) + 1
                if used + cost > summary_tokens:
                    break
                lines.append((line, cost))
                used += cost
            tail = ""
            while len(lines) < dropped:  # the line saying how many are not listed fits too
                left = dropped - len(lines)
                tail = f"({left} earlier turn{'' if left == 1 else 's'} not listed)"
                if used + self.counter.count(tail) + 1 <= summary_tokens or not lines:
                    break
                used -= lines.pop()[1]
            digest = "\n".join([tail] * bool(tail) + [x for x, _ in reversed(lines)])
            if len(self._digests) >= 1000:
                self._digests.pop(next(iter(self._digests)))
            self._digests[key] = digest
        return self._note(dropped, digest)

    def _digest_line(self, history: Sequence[Message], bounds: tuple[int, int],
                     refs: Sequence[str], handles: Mapping[str, str], turn: int) -> str:
        """One dropped turn in a line: its text's start, each call and the start of its
        result, with the handle ``expand`` takes."""
        def clip(text: str | None, width: int) -> str:
            line = " ".join((text or "").split())
            return line if len(line) <= width else line[: width - 1] + "…"

        parts: list[str] = []
        results = {}
        for i in range(*bounds):
            m = history[i]
            if m.role == "tool" and m.tool_call_id:
                handle = _handle(handles, m, refs[i])
                results[m.tool_call_id] = f"{clip(m.content, 100)} [{handle}]"
        for i in range(*bounds):
            m = history[i]
            if m.role == "tool":
                continue
            if m.content:
                parts.append(f"{m.role}: {clip(m.content, 100)}")
            for c in m.tool_calls:
                parts.append(f"{c.name}({clip(c.arguments, 60)}) → "
                             + results.get(c.id, "no result"))
        return f"- turn {turn + 1}: " + ("; ".join(parts) or "(empty)")

    def tools_tokens(self, tools: Sequence[Any]) -> int:
        """Tokens of the tool definitions a prompt declares: each as the JSON of its
        name, description and parameter schema, plus a few for the template."""
        total = 0
        for spec in tools:
            data = spec.model_dump() if hasattr(spec, "model_dump") else dict(spec)
            # escaped non-ASCII: never fewer tokens than the raw characters
            total += self.counter.count(json.dumps(data)) + TOOL_OVERHEAD
        return total

    def _system(self, instructions: str, pinned: Sequence[str]) -> Message:
        text = instructions
        if pinned:
            text += "\n\nPinned facts:\n" + "\n".join(f"- {p}" for p in pinned)
        return Message.system(text)

    # -- building -------------------------------------------------------------------

    def _memories_that_fit(self, memories: Sequence[Memory]) -> list[Memory]:
        """As many of ``memories`` as fit their share (``memory_tokens``), in the order
        given, each handle once."""
        kept: list[Memory] = []
        seen: set[str] = set()
        empty = self._memory_message([Memory(handle="", text="", namespace=Namespace())])
        used = self._tokens(empty) if empty is not None else 0
        for m in memories:
            if m.handle in seen:
                continue
            line = self.counter.count(f"- [{m.handle}] {m.text}") + 1
            if used + line <= self.memory_tokens:
                kept.append(m)
                seen.add(m.handle)
                used += line
        return kept

    def build(
        self,
        *,
        instructions: str,
        task: str,
        history: Sequence[Message] = (),
        refs: Sequence[str] | None = None,
        pinned: Sequence[str] = (),
        memories: Sequence[Memory | Hit] = (),
        handles: Mapping[str, str] | None = None,
        tools: Sequence[Any] = (),
    ) -> BuiltContext:
        """Build the prompt for the next model call.

        Args:
            instructions: The agent's instructions (the system message).
            task: The task, as the first user message.
            history: The conversation after the task: the thread's earlier turns,
                then this run's, oldest first.
            refs: A stable reference per history message (e.g. ``"evt:RUN:SEQ"``), used
                as the handle of its masked form; defaults to ``"msg:{index}"``.
            pinned: Facts always in the system message.
            memories: Memories retrieved for this step, most relevant first.
            handles: Memory handles of tool results stored in long-term memory, by
                the message's ref or by tool call id (see :func:`offload_large_results`);
                key them by ref when the history spans runs, whose call ids may repeat.
            tools: The tool definitions the prompt declares (``ToolSpec`` objects or
                their dicts), counted against the budget as the provider receives them
                (JSON of name, description and parameter schema).

        Raises:
            ContextBudgetError: the instructions, pinned facts, tool definitions and
                task alone do not fit.
        """
        refs = list(refs) if refs is not None else self._default_refs(len(history))
        if len(refs) != len(history):
            raise ContextBudgetError("refs must have one entry per history message",
                                     hint="pass refs=None for the default references")
        handles = dict(handles or {})
        mems = [m.memory if isinstance(m, Hit) else m for m in memories]
        head = [self._system(instructions, pinned), Message.user(task)]
        tools_tokens = self.tools_tokens(tools)
        fixed = sum(self._tokens(m) for m in head) + tools_tokens
        if fixed > self.budget:
            raise ContextBudgetError(
                f"instructions, pinned facts, task and tool definitions take {fixed} "
                f"tokens ({tools_tokens} of them the {len(tools)} tools' definitions); "
                f"the budget is {self.budget}",
                hint="raise the budget, offer fewer tools per step, or shorten the "
                     "instructions and the tools' descriptions")
        bounds, full, mask = self._prefix_sums(history, refs, handles)
        n = len(bounds)

        kept_mems = self._memories_that_fit(mems)

        batch = self.batch_turns
        mask_cut = (max(0, n - self.keep_recent_turns) // batch) * batch
        drop_cut = 0

        notes: dict[int, int] = {}
        memory_cost: dict[int, int] = {}

        def total() -> int:
            t = fixed + (mask[mask_cut] - mask[drop_cut] if mask_cut > drop_cut else 0)
            t += full[n] - full[max(mask_cut, drop_cut)]
            if drop_cut:
                if drop_cut not in notes:
                    notes[drop_cut] = self._tokens(self._dropped_note(
                        drop_cut, history, bounds, refs, handles, self.summary_tokens))
                t += notes[drop_cut]
            if len(kept_mems) not in memory_cost:
                mm = self._memory_message(kept_mems)
                memory_cost[len(kept_mems)] = self._tokens(mm) if mm is not None else 0
            return t + memory_cost[len(kept_mems)]

        floor_recent = (max(0, n - 2) // batch) * batch  # keep the last turns whole
        while total() > self.budget:
            if mask_cut < floor_recent:
                mask_cut = min(floor_recent, mask_cut + batch)
            elif drop_cut < mask_cut:
                drop_cut = min(mask_cut, drop_cut + self.drop_batch_turns)
            elif kept_mems:
                kept_mems.pop()
            elif mask_cut < n:
                mask_cut = min(n, mask_cut + batch)
            elif drop_cut < n:
                drop_cut = min(n, drop_cut + self.drop_batch_turns)
            else:
                raise ContextBudgetError(  # pragma: no cover - fixed already fits
                    "the prompt cannot fit the budget", hint="raise the budget")
        recipe = {
            "version": RECIPE_VERSION, "counter": self.counter.name, "budget": self.budget,
            "preview_chars": self.preview_chars,
            "large_result_tokens": self.large_result_tokens,
            "history": len(history), "turns": n, "drop_cut": drop_cut, "mask_cut": mask_cut,
            "refs": refs, "handles": handles, "pinned": len(pinned),
            "memories": [m.handle for m in kept_mems],
        }
        if self.summary_tokens:  # absent when off: recipes journaled before stay alike
            recipe["summary_tokens"] = self.summary_tokens
        if tools_tokens:  # absent without tools, likewise
            recipe["tools_tokens"] = tools_tokens
        return self._assemble(instructions, task, history, pinned, kept_mems, recipe, bounds)

    def replay(
        self,
        recipe: Mapping[str, Any],
        *,
        instructions: str,
        task: str,
        history: Sequence[Message],
        pinned: Sequence[str] = (),
        memories: Mapping[str, Memory],
    ) -> BuiltContext:
        """Rebuild a prompt exactly from its recipe and the same sources (memories by
        handle). The builder must have the recipe's counter and settings."""
        kept = [memories[h] for h in recipe["memories"]]
        return self._assemble(instructions, task, history[: recipe["history"]], pinned, kept,
                              dict(recipe))

    def _assemble(self, instructions: str, task: str, history: Sequence[Message],
                  pinned: Sequence[str], mems: Sequence[Memory], recipe: dict[str, Any],
                  bounds: list[tuple[int, int]] | None = None) -> BuiltContext:
        bounds = bounds if bounds is not None else _turn_bounds(history)
        refs, handles = recipe["refs"], recipe["handles"]
        drop_cut, mask_cut = recipe["drop_cut"], recipe["mask_cut"]
        system = self._system(instructions, pinned)
        parts: list[tuple[str, list[Message]]] = [
            ("instructions", [system]), ("task", [Message.user(task)])]
        if drop_cut:
            parts.append(("dropped_note", [self._dropped_note(
                drop_cut, history, bounds, refs, handles,
                int(recipe.get("summary_tokens") or 0))]))
        masked = [m for t in range(drop_cut, min(mask_cut, len(bounds)))
                  for m in self._render_turn(history, bounds[t], refs, handles, True)]
        recent = [m for t in range(max(drop_cut, mask_cut), len(bounds))
                  for m in self._render_turn(history, bounds[t], refs, handles, False)]
        parts += [("masked_turns", masked), ("recent_turns", recent)]
        mm = self._memory_message(mems)
        if mm is not None:
            parts.append(("memories", [mm]))
        messages = tuple(m for _, ms in parts for m in ms)
        described = tuple(ContextPart(name=name, messages=len(ms),
                                      tokens=sum(self._tokens(m) for m in ms))
                          for name, ms in parts)
        if recipe.get("tools_tokens"):  # declared beside the messages, counted too
            described += (ContextPart(name="tools", messages=0,
                                      tokens=int(recipe["tools_tokens"])),)
        return BuiltContext(messages=messages, parts=described,
                            tokens=sum(p.tokens for p in described), budget=self.budget,
                            recipe=recipe)
