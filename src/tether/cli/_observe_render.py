"""Rendering of the observe views (trace tree, diff, doctor findings, cost) as rich text.

Kept apart from the commands so the work can be timed and tested without a terminal.
Lines are assembled as :class:`rich.text.Text` by hand rather than with rich's Tree:
a 10,000-event run renders in a fraction of a second.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from rich.console import Console
from rich.text import Text

from ..core import (
    Event,
    EventType,
    ModelErrorPayload,
    ModelRequestPayload,
    ModelResponsePayload,
    payload_of,
)
from ..observe import (
    Finding,
    RunCost,
    RunDiff,
    Span,
    context_summary,
    describe,
    new_messages,
    prompts,
)

#: A model call that ended in failure (committed with its ``model.request``).
MODEL_ERROR = "model.error"


def as_text(value: Any) -> str:
    """Journal content as text, verbatim: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)

_STATUS_STYLE = {
    "ok": "green", "completed": "green", "running": "yellow", "paused": "yellow",
    "error": "red", "failed": "red", "in_doubt": "magenta", "needs_attention": "magenta",
    "quarantined": "red",
}
_MARK = {"ok": "✓", "error": "✗", "in_doubt": "?", "running": "…"}
#: Events shown as leaves under the span they belong to.
_LEAF_EVENTS = frozenset({
    EventType.RETRY, EventType.FALLBACK, EventType.BREAKER, EventType.BUDGET,
    EventType.DECISION, EventType.CONTEXT_BUILT, EventType.MEMORY_WRITE,
    EventType.MEMORY_RECALL, EventType.MEMORY_WORKING, EventType.FINDING,
    EventType.RUN_RESUMED, EventType.RUN_PAUSED,
    EventType.RUN_FAILED, EventType.RUN_NEEDS_ATTENTION, EventType.RUN_QUARANTINED,
    EventType.SUBRUN_STARTED, EventType.SUBRUN_COMPLETED,
})


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def clip(text: Any, width: int = 80) -> str:
    # Control characters (ESC, BEL, C1) from a journal are shown, never sent to the
    # terminal: hostile content could clear the screen or set the title otherwise.
    line = _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", " ".join(as_text(text).split()))
    return line if len(line) <= width else line[: width - 1] + "…"


def ms(value: float | None) -> str:
    if value is None:
        return "…"
    return f"{value:.0f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def usd(value: float) -> str:
    return f"${value:.6f}" if value < 0.01 else f"${value:.4f}"


# -- trace ------------------------------------------------------------------------------


def _head(span: Span, cost: RunCost | None) -> Text:
    if span.kind == "run":
        return _run_head(span, cost)
    line = Text()
    mark = _MARK.get(span.status, "")
    line.append(f"{mark} " if mark else "", _STATUS_STYLE.get(span.status, ""))
    describe = _HEADS.get(span.kind)
    if describe is None:
        line.append(span.name)
    else:
        describe(line, span)
    return line


def _run_head(span: Span, cost: RunCost | None) -> Text:
    line = Text()
    line.append(span.name, "bold")
    line.append(f"  {span.run_id}  ", "dim")
    line.append(span.status, _STATUS_STYLE.get(span.status, ""))
    line.append(f"  {span.attrs.get('steps', 0)} steps  {ms(span.duration_ms)}  "
                f"{span.input_tokens}→{span.output_tokens} tok  {usd(span.cost_usd)} own")
    if cost is not None and cost.children:
        line.append(f" · {usd(cost.rolled_up_usd)} rolled up over {cost.subruns} sub-runs "
                    f"({cost.rolled_up_input_tokens}→{cost.rolled_up_output_tokens} tok)",
                    "cyan")
    error = span.attrs.get("error")
    if error:
        line.append(f"  {as_text(error.get('type'))}: {clip(error.get('message', ''), 80)}",
                    "red")
    return line


def _step_head(line: Text, span: Span) -> None:
    line.append(span.name, "bold")
    line.append(f"  {ms(span.duration_ms)}")
    if span.input_tokens or span.output_tokens:
        line.append(f"  {span.input_tokens}→{span.output_tokens} tok")
    line.append(f"  {usd(span.cost_usd)}", "dim")


def _model_head(line: Text, span: Span) -> None:
    line.append(span.name, "blue")
    line.append(f"  {ms(span.duration_ms)}  {span.input_tokens}→{span.output_tokens} tok"
                f"  {usd(span.cost_usd)}")
    calls = span.attrs.get("calls") or []
    error = span.attrs.get("error")
    if span.status == "error" and error:
        attempts = span.attrs.get("attempts")
        line.append(f"  {as_text(error.get('type'))}: {clip(error.get('message', ''), 60)}"
                    + (f" (after {attempts} attempt(s))" if attempts else ""), "red")
    elif calls:
        line.append(f"  → calls {', '.join(as_text(c) for c in calls)}", "dim")
    elif span.status == "ok":
        line.append("  → answers", "dim")
    if span.attrs.get("offered") is not None:
        names = [t.get("name") if isinstance(t, dict) else t
                 for t in span.attrs.get("offered") or []]
        line.append(f"  offered: {clip(', '.join(as_text(n) for n in names), 60)}", "dim")
    if span.attrs.get("constraint") is not None:
        line.append(f"  constrained: {clip(span.attrs['constraint'], 60)}", "dim")


def _tool_head(line: Text, span: Span) -> None:
    arguments = json.dumps(span.attrs.get("arguments"), ensure_ascii=False)
    line.append(f"execute_tool {as_text(span.attrs.get('tool'))}", "magenta")
    line.append(f"({clip(arguments, 60)})  {ms(span.duration_ms)}")
    if span.cost_usd:
        line.append(f"  {usd(span.cost_usd)}")
    error = span.attrs.get("error")
    if span.status == "error" and error:
        line.append(f"  {as_text(error.get('type'))}: {clip(error.get('message', ''), 60)}",
                    "red")
    elif span.status == "in_doubt":
        line.append("  in doubt: intent without outcome", "magenta")
    elif span.attrs.get("result") is not None:
        line.append(f"  → {clip(span.attrs['result'], 60)}", "dim")


#: How a step, model or tool span's line goes on after its status mark.
_HEADS: dict[str, Callable[[Text, Span], None]] = {
    "step": _step_head, "model": _model_head, "tool": _tool_head,
}


def _message_lines(message: dict[str, Any]) -> list[Text]:
    role = as_text(message.get("role"))
    lines = []
    if message.get("content") is not None:
        lines.append(Text.assemble((f"[{role}] ", "bold"), as_text(message["content"])))
    for call in message.get("tool_calls") or []:
        lines.append(Text.assemble((f"[{role}] ", "bold"), ("call ", "dim"),
                                   f"{as_text(call.get('name'))}"
                                   f"({as_text(call.get('arguments') or '{}')})"))
    if not lines:
        lines.append(Text(f"[{role}]", "bold"))
    return lines


@dataclass(slots=True)
class PromptIndex:
    """What ``--full`` needs of one run's requests, in one pass (linear in the journal):
    each request's new messages (references resolved) and its prompt's length."""

    news: dict[int, list[dict[str, Any]]]
    prefix: dict[int, int]
    length: dict[int, int]
    previous: dict[int, int]

    @classmethod
    def of(cls, events: Sequence[Event]) -> PromptIndex:
        news = new_messages(events)
        prefix: dict[int, int] = {}
        length: dict[int, int] = {}
        previous: dict[int, int] = {}
        last = 0
        for e in events:
            if e.type == EventType.MODEL_REQUEST:
                kept = min(payload_of(e, ModelRequestPayload).prefix, last)
                prefix[e.seq], previous[e.seq] = kept, last
                last = length[e.seq] = kept + len(news.get(e.seq, []))
        return cls(news=news, prefix=prefix, length=length, previous=previous)


def _prompt_head(index: PromptIndex, seq: int) -> Text:
    kept, before = index.prefix[seq], index.previous[seq]
    added = len(index.news.get(seq, []))
    if kept == 0:
        return Text(f"prompt: {added} message(s):", "dim")
    if kept == before:
        return Text(f"prompt: the previous request's {kept} message(s), then {added} new:",
                    "dim")
    return Text(f"prompt: the first {kept} of the previous request's {before} message(s) "
                f"(the rest left out), then {added} new:", "dim")


def _details(span: Span, index: PromptIndex | None) -> list[Text]:
    """The ``--full`` lines of a span: what each prompt adds to the previous one, the
    answer (or the failure), each tool call's arguments and result."""
    a = span.attrs
    if span.kind == "model":
        lines: list[Text] = []
        seq = a.get("request_seq")
        if index is not None and isinstance(seq, int) and seq in index.length:
            lines.append(_prompt_head(index, seq))
            for message in index.news.get(seq, []):
                lines.extend(_message_lines(message))
        for e in span.events:
            if e.type == EventType.MODEL_RESPONSE:
                lines.append(Text("response:", "dim"))
                lines.extend(_message_lines(payload_of(e, ModelResponsePayload).message))
            elif e.type == MODEL_ERROR and (rejected := payload_of(
                    e, ModelErrorPayload).output):
                lines.append(Text.assemble(("rejected output: ", "dim"), as_text(rejected)))
        return lines
    if span.kind == "tool":
        lines = [Text.assemble(("arguments: ", "dim"), json.dumps(
            a.get("arguments"), ensure_ascii=False))]
        if a.get("result") is not None:
            lines.append(Text.assemble(("result: ", "dim"), as_text(a["result"])))
        return lines
    if span.kind == "run" and a.get("task") is not None:
        lines = [Text.assemble(("task: ", "dim"), as_text(a["task"]))]
        if a.get("output") is not None:
            lines.append(Text.assemble(("output: ", "dim"), as_text(a["output"])))
        return lines
    return []


def _run_journals(root: Span) -> dict[str, list[Event]]:
    by_run: dict[str, list[Event]] = {}
    for s in root.walk():
        by_run.setdefault(s.run_id, []).extend(s.events)
    for events in by_run.values():
        events.sort(key=lambda e: e.seq)
    return by_run


def render_trace(root: Span, *, full: bool = False, cost: RunCost | None = None
                 ) -> Iterator[Text]:
    """The lines of ``tether trace``, one at a time: one per span, indented as a tree,
    events as leaves. With ``full``, each prompt is shown as what it adds to the
    previous one, so the output grows with the journal, not with its square."""
    indexes: dict[str, PromptIndex] = {}
    if full:
        indexes = {run: PromptIndex.of(events) for run, events in _run_journals(root).items()}
    # Depth first without recursion: (span, indent, last, is_root).
    pending: list[tuple[Span, str, bool, bool]] = [(root, "", True, True)]
    while pending:
        span, indent, last, is_root = pending.pop()
        branch = "" if is_root else ("└── " if last else "├── ")
        line = Text(indent + branch, "dim")
        line.append_text(_head(span, cost if is_root else None))
        yield line
        inner = indent + ("" if is_root else ("    " if last else "│   "))
        leaves: list[Event] = [e for e in span.events if e.type in _LEAF_EVENTS]
        children = span.children
        if full:
            guide = "│   " if (children or leaves) else "    "
            for detail in _details(span, indexes.get(span.run_id)):
                yield Text(inner + guide, "dim").append_text(detail)
        for i, e in enumerate(leaves):
            end = i == len(leaves) - 1 and not children
            yield Text(inner + ("└── " if end else "├── "), "dim").append_text(
                Text.assemble((f"{e.type} ", "yellow"), describe(e, width=90)))
        for i in range(len(children) - 1, -1, -1):
            pending.append((children[i], inner, i == len(children) - 1, False))


def render_prompt(events: Sequence[Event], step: int) -> Iterator[Text]:
    """The whole prompt of each model call of ``step`` (``tether trace --prompt``)."""
    everything = prompts(events)
    found = False
    for e in events:
        if e.type != EventType.MODEL_REQUEST or e.step != step:
            continue
        found = True
        messages = everything.get(e.seq, [])
        yield Text(f"step {step}, request {e.seq}: {len(messages)} message(s)", "bold")
        yield Text(describe(e, width=120), "dim")
        for message in messages:
            yield from _message_lines(message)
    if not found:
        yield Text(f"step {step} made no model call", "yellow")


def span_json(span: Span, *, full: bool = False) -> dict[str, Any]:
    """A span and its descendants as JSON (``tether trace --json``). With ``full``, a
    model span's ``prompt`` is what its request adds to the previous one: ``prefix``
    (messages kept from the previous request) and ``new`` (the messages that follow)."""
    indexes: dict[str, PromptIndex] = {}
    if full:
        indexes = {run: PromptIndex.of(events) for run, events in _run_journals(span).items()}

    def encode(s: Span) -> dict[str, Any]:
        attrs = dict(s.attrs)
        if not full:
            for key in ("result", "tools", "instructions", "output", "task"):
                attrs.pop(key, None)
        data: dict[str, Any] = {
            "run_id": s.run_id, "span_id": s.span_id, "parent_id": s.parent_id,
            "kind": s.kind, "name": s.name, "step": s.step, "status": s.status,
            "start": s.start, "end": s.end, "duration_ms": s.duration_ms,
            "input_tokens": s.input_tokens, "output_tokens": s.output_tokens,
            "cost_usd": s.cost_usd, "attrs": attrs,
            "events": [{"seq": e.seq, "type": e.type} for e in s.events],
        }
        built = [e for e in s.events if e.type == EventType.CONTEXT_BUILT]
        if s.kind == "step" and built:  # an agent with memory: the prompt as built
            data["context"] = context_summary(built[-1].payload)
        if full and s.kind == "model":
            seq = s.attrs.get("request_seq")
            index = indexes.get(s.run_id)
            data["prompt"] = None
            if index is not None and isinstance(seq, int) and seq in index.length:
                data["prompt"] = {"prefix": index.prefix[seq], "new": index.news.get(seq, [])}
            data["response"] = next((payload_of(e, ModelResponsePayload).message
                                     for e in s.events
                                     if e.type == EventType.MODEL_RESPONSE), None)
        data["children"] = [encode(c) for c in s.children]
        return data

    return encode(span)


# -- doctor, diff, cost ---------------------------------------------------------------


def render_findings(run_id: str, findings: Sequence[Finding]) -> list[Text]:
    if not findings:
        return [Text(f"no findings for {run_id}: nothing the doctor knows looks wrong",
                     "green")]
    lines = [Text(f"{len(findings)} finding(s) for {run_id}", "bold")]
    for f in findings:
        steps = ", ".join(str(s) for s in f.steps[:12]) + (" …" if len(f.steps) > 12 else "")
        lines.append(Text.assemble(("● ", "red"), (f.kind, "bold red"), f"  steps {steps}"))
        lines.append(Text("  " + f.message))
        lines.append(Text.assemble(("  look: ", "dim"), (f.how_to_look, "cyan")))
    return lines


def render_diff(diff: RunDiff) -> list[Text]:
    lines = []
    for label, view in (("A", diff.a), ("B", diff.b)):
        t = view.totals()
        lines.append(Text(f"{label}: {t['run_id']}  {t['status']}  {t['steps']} steps  "
                          f"{t['input_tokens']}→{t['output_tokens']} tok  {usd(t['cost_usd'])}  "
                          f"{ms(t['latency_ms'])} in calls"))
    first = diff.first_divergence
    if first is None:
        lines.append(Text("the runs did the same thing (only timing may differ)", "green"))
    else:
        lines.append(Text(f"first divergence: step {first.step}, {first.what}", "bold yellow"))
        lines.append(Text.assemble(("  A: ", "bold"), clip(_plain(first.a), 150)))
        lines.append(Text.assemble(("  B: ", "bold"), clip(_plain(first.b), 150)))
    lines.append(Text("step  differs                 A calls → tokens, cost"
                      "          B calls → tokens, cost", "dim"))
    for s in diff.steps:
        differs = ",".join(s.differs) or "same"
        side = []
        for step in (s.a, s.b):
            if step is None:
                side.append("—")
                continue
            calls = ", ".join(t for t, _ in step.calls) or ("answer" if step.answer else "")
            side.append(f"{clip(calls, 20)} → {step.input_tokens}+{step.output_tokens}, "
                        f"{usd(step.cost_usd)}")
        style = "" if differs == "same" else "yellow"
        lines.append(Text(f"{s.step:>4}  {differs:<22}  {side[0]:<32}  {side[1]}", style))
    return lines


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def render_cost(cost: RunCost) -> list[Text]:
    lines = [Text(f"{cost.run_id} ({cost.agent})  own {usd(cost.own_usd)}  "
                  f"(model {usd(cost.model_usd)}, tools {usd(cost.tool_usd)})  "
                  f"{cost.input_tokens}→{cost.output_tokens} tok", "bold")]
    if cost.price_table:
        lines.append(Text(f"price table: {cost.price_table}", "dim"))
    if cost.unpriced_calls:
        lines.append(Text(f"{cost.unpriced_calls} model call(s) had no price: counted as $0",
                          "yellow"))
    if cost.children:
        lines.append(Text(f"rolled up over {cost.subruns} sub-runs: "
                          f"{usd(cost.rolled_up_usd)}  {cost.rolled_up_input_tokens}→"
                          f"{cost.rolled_up_output_tokens} tok", "cyan"))
    lines.append(Text("step  model $      tool $       tokens", "dim"))
    for s in cost.steps:
        lines.append(Text(f"{s.step:>4}  {usd(s.model_usd):<11}  {usd(s.tool_usd):<11}  "
                          f"{s.input_tokens}→{s.output_tokens}"))
    for child in cost.children:
        lines.append(Text(f"sub-run {child.run_id} ({child.agent}): own {usd(child.own_usd)}, "
                          f"rolled up {usd(child.rolled_up_usd)}", "cyan"))
    return lines


def event_line(event: Event, *, width: int = 100) -> Text:
    """One event as a line of ``tether show`` and ``tether tail``: seq, step, type,
    duration and what happened, content verbatim."""
    ms_text = "" if event.duration_ms is None else f" {event.duration_ms:.0f}ms"
    failed = event.type in (EventType.RUN_FAILED, EventType.TOOL_ERROR, MODEL_ERROR)
    return Text.assemble((f"{event.seq:>5} ", "dim"), (f"s{event.step:<4}", "dim"),
                         (f"{event.type:<17}", "red" if failed else "cyan"),
                         (f"{ms_text:>7} ", "dim"), describe(event, width=width))


def render_events(header: str, events: Iterable[Event]) -> Iterator[Text]:
    """``tether show``: a header line, then one line per event."""
    yield Text(header, "bold")
    for event in events:
        yield event_line(event)


def write_chunks(file: IO[str], chunks: Iterable[str]) -> None:
    """Write ``chunks`` in writes of about 64 KiB (no whole-output string in memory)."""
    buffer: list[str] = []
    size = 0
    for chunk in chunks:
        buffer.append(chunk)
        size += len(chunk)
        if size > 1 << 16:
            file.write("".join(buffer))
            buffer.clear()
            size = 0
    file.write("".join(buffer))
    file.flush()


def write_json(file: IO[str], value: Any, *, indent: int | None = 2) -> None:
    """Write ``value`` as JSON, then a newline, in chunks (see :func:`write_chunks`)."""
    encoder = json.JSONEncoder(indent=indent, ensure_ascii=False, default=str)
    write_chunks(file, itertools.chain(encoder.iterencode(value), ("\n",)))


def write_json_array(file: IO[str], items: Iterable[Any]) -> None:
    """Write ``items`` as an indented JSON array, one item at a time."""
    file.write("[")
    first = True
    for item in items:
        text = json.dumps(item, indent=2, default=str)
        file.write(("\n  " if first else ",\n  ") + text.replace("\n", "\n  "))
        first = False
    file.write("\n]\n" if not first else "]\n")
    file.flush()


def show(console: Console, lines: Iterable[Text]) -> None:
    """Print ``lines`` as they come; through a pager when stdout is a terminal and they
    overflow it. Journal content is never read as markup or emoji codes: lines are
    :class:`~rich.text.Text`, printed as they are."""
    if console.color_system is None:  # not a terminal: plain text, written in chunks
        write = console.file.write
        buffer: list[str] = []
        for line in lines:
            buffer.append(line.plain)
            buffer.append("\n")
            if len(buffer) >= 4096:
                write("".join(buffer))
                buffer.clear()
        write("".join(buffer))
        console.file.flush()
        return
    stream = iter(lines)
    head = list(itertools.islice(stream, console.size.height + 1))
    if console.is_terminal and len(head) > console.size.height:
        with console.pager(styles=True):
            for line in itertools.chain(head, stream):
                console.print(line, soft_wrap=True, highlight=False)
        return
    for line in head:
        console.print(line, soft_wrap=True, highlight=False)
