"""Commands that read runs: trace, tail, diff, export, doctor, cost."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from ..core import (
    Event,
    EventType,
    ModelRequestPayload,
    Redactor,
    RunStatus,
    StoreError,
    TetherError,
    payload_of,
)
from ..observe import (
    CAPTURE_CONTENT_ENV,
    RunCost,
    RunTree,
    Span,
    build_trace,
    diagnose,
    diff_runs,
    event_lines,
    export_events,
    export_otlp_spans,
    finding_payloads,
    follow,
    load_run_tree,
    otlp_json_chunks,
    prompts,
    read_events,
    send_otlp,
    tree_cost,
)
from ..orchestration import DelegationOverhead, delegation_overhead
from ..store import Store
from ._common import DbOption, JsonOption, console, full_run_id, handle_errors, with_store
from ._observe_render import (
    event_line,
    render_cost,
    render_diff,
    render_findings,
    render_prompt,
    render_trace,
    show,
    span_json,
    write_chunks,
    write_json,
)

app = typer.Typer()

RunArg = Annotated[str, typer.Argument(help="The run id (see `tether runs`).")]
SubrunsOption = Annotated[bool, typer.Option(
    "--subruns/--no-subruns", help="Include sub-runs (child runs), recursively.")]


def _dump(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


# -- trace ------------------------------------------------------------------------------


async def load_trace(store: Store, run_id: str, *, subruns: bool = True
                     ) -> tuple[Span, RunCost, DelegationOverhead]:
    """The span tree, cost and delegation overhead of a run (and its sub-runs)."""
    tree = await load_run_tree(store, run_id, subruns=subruns)
    return build_trace(tree), tree_cost(tree), tree_overhead(tree)


def tree_overhead(tree: RunTree) -> DelegationOverhead:
    """Coordination against subtask work over a loaded run tree (tether.orchestration)."""
    return delegation_overhead(tree.run_id, {t.run_id: t.events for t in tree.walk()})


def render_overhead(o: DelegationOverhead) -> Text:
    """One line: what coordinating the sub-runs cost against the subtasks' own work."""
    ratio = "n/a" if o.token_ratio is None else f"{o.token_ratio:.2f}x"
    return Text(f"delegation overhead {ratio}: coordination {o.coordination_tokens} tok "
                f"(${o.coordination_usd:.6f}, {o.coordinating_runs} run(s)) vs subtask work "
                f"{o.work_tokens} tok (${o.work_usd:.6f}, {o.work_runs} run(s))", "magenta")


@app.command()
@handle_errors
def trace(
    run_id: RunArg,
    full: Annotated[bool, typer.Option(
        "--full", help="Also show what each model call's prompt adds to the previous one, "
                       "its answer, and each tool call's arguments and result.")] = False,
    prompt: Annotated[int | None, typer.Option(
        "--prompt", metavar="STEP", help="Print the whole prompt of STEP's model call(s) "
                                         "instead of the tree.", show_default=False)] = None,
    subruns: SubrunsOption = True,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a run as a tree of spans: steps, model calls, tool calls and sub-runs, with
    duration, tokens, cost and status of each."""
    run_id = full_run_id(db, run_id)
    if prompt is not None:
        events = with_store(db, lambda store: read_events(store, run_id))
        if as_json:
            write_json(sys.stdout, prompt_json(events, prompt))
        else:
            show(console, render_prompt(events, prompt))
        return
    root, cost, overhead = with_store(
        db, lambda store: load_trace(store, run_id, subruns=subruns))
    if as_json:
        write_json(sys.stdout, {"trace": span_json(root, full=full), "cost": cost.to_dict(),
                                "delegation": overhead.to_dict()})
        return
    show(console, render_trace(root, full=full, cost=cost))
    if overhead.subruns:
        show(console, [render_overhead(overhead)])


def prompt_json(events: Sequence[Event], step: int) -> list[dict[str, Any]]:
    """``tether trace --prompt STEP --json``: each model call of the step and its prompt."""
    everything = prompts(events)
    return [{"seq": e.seq, "step": e.step, "provider": p.provider, "model": p.model,
             "tools": p.tools, "constraint": p.constraint,
             "messages": everything.get(e.seq, [])}
            for e in events if e.type == EventType.MODEL_REQUEST and e.step == step
            for p in [payload_of(e, ModelRequestPayload)]]


# -- tail -------------------------------------------------------------------------------


@app.command()
@handle_errors
def tail(
    run_id: RunArg,
    poll: Annotated[float, typer.Option(help="Seconds between reads of the journal.")] = 0.25,
    wait: Annotated[float, typer.Option(
        help="Seconds to wait for a run that does not exist yet.")] = 10.0,
    timeout: Annotated[float, typer.Option(
        help="Give up after this many seconds (0: never).")] = 0.0,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Follow a run as another process executes it, event by event, until it stops
    (completed, failed, needs_attention, quarantined or paused).

    Exits 0 when the run completed or paused, 1 when it failed, needs attention or
    was quarantined.
    """
    run_id = full_run_id(db, run_id)

    async def work(store: Store) -> str | None:
        status: str | None = None
        async for event in follow(store, run_id, poll_s=poll, wait_s=wait,
                                  timeout_s=timeout or None):
            if as_json:
                sys.stdout.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
                sys.stdout.flush()
            else:
                console.print(event_line(event), soft_wrap=True, highlight=False)
            if event.type.startswith("run."):
                status = (await store.run(run_id)).status
        return status or str((await store.run(run_id)).status)

    try:
        status = with_store(db, work)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except TimeoutError as e:
        raise TetherError(str(e), hint="the process running it may have died; "
                                       "`tether resume` continues it") from None
    if not as_json:
        console.print(Text(f"run {run_id} is {status}", "dim"), highlight=False)
    if status in (RunStatus.FAILED, RunStatus.NEEDS_ATTENTION, RunStatus.QUARANTINED):
        raise typer.Exit(1)


# -- diff -------------------------------------------------------------------------------


@app.command()
@handle_errors
def diff(
    run_a: Annotated[str, typer.Argument(help="The first run.")],
    run_b: Annotated[str, typer.Argument(help="The run to compare it with.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compare two runs: where they first diverge, then step by step the calls, results,
    tokens and cost of each."""
    run_a = full_run_id(db, run_a)
    run_b = full_run_id(db, run_b)

    async def load(store: Store) -> tuple[list[Event], list[Event]]:
        return await read_events(store, run_a), await read_events(store, run_b)

    events_a, events_b = with_store(db, load)
    result = diff_runs(events_a, events_b)
    if as_json:
        _dump(result.to_dict())
        return
    show(console, render_diff(result))


# -- export -----------------------------------------------------------------------------


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    OTLP_JSON = "otlp-json"
    OTLP = "otlp"


@app.command()
@handle_errors
def export(
    run_id: RunArg,
    format: Annotated[ExportFormat, typer.Option(
        "--format", "-f", help="jsonl: the journal's events, one JSON object a line; "
        "otlp-json: OpenTelemetry spans as OTLP/JSON; otlp: send the spans to the OTLP/HTTP "
        "endpoint ($OTEL_EXPORTER_OTLP_ENDPOINT or --endpoint).")] = ExportFormat.JSONL,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write to this file instead of stdout.")] = None,
    endpoint: Annotated[str | None, typer.Option(
        help="OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces "
             "(--format otlp).")] = None,
    content: Annotated[bool | None, typer.Option(
        "--content/--no-content", help="Put prompts, answers, tool arguments and results in "
        f"the spans (default: ${CAPTURE_CONTENT_ENV}).", show_default=False)] = None,
    subruns: Annotated[bool | None, typer.Option(
        "--subruns/--no-subruns", help="Include sub-runs (default: yes for spans, no for "
        "jsonl).", show_default=False)] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export a run, redacted: its events as JSONL, or its OpenTelemetry GenAI spans
    as OTLP/JSON or sent over OTLP/HTTP."""
    run_id = full_run_id(db, run_id)
    redactor = Redactor.from_env()
    if format == ExportFormat.JSONL:
        events = with_store(db, lambda store: export_events(
            store, run_id, redactor=redactor, subruns=bool(subruns)))
        _write(output, event_lines(events))
        if as_json and output is not None:
            _dump({"format": str(format), "events": len(events), "output": str(output)})
        return
    spans = with_store(db, lambda store: export_otlp_spans(
        store, run_id, include_content=content, redactor=redactor,
        subruns=True if subruns is None else subruns))
    if format == ExportFormat.OTLP_JSON:
        _write(output, otlp_json_chunks(spans))
        if as_json and output is not None:
            _dump({"format": str(format), "spans": len(spans), "output": str(output)})
        return
    sent = send_otlp(spans, endpoint=endpoint)
    if as_json:
        _dump({"format": str(format), "spans": sent, "endpoint": endpoint})
    else:
        console.print(f"sent {sent} spans of {run_id} over OTLP/HTTP", highlight=False)


def _write(output: Path | None, chunks: Iterable[str]) -> None:
    """Write ``chunks`` as they come, to stdout or ``output``."""
    if output is None:
        write_chunks(sys.stdout, chunks)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as f:
        write_chunks(f, chunks)


# -- doctor -----------------------------------------------------------------------------


async def _record_findings(store: Store, run_id: str, events: list[Event]) -> int | None:
    """Append the findings not already journaled as ``finding`` events; return how many,
    or None when the run is still running (its process owns the next ``seq``)."""
    fresh = finding_payloads(events)  # only those not journaled yet
    if not fresh:
        return 0
    summary = await store.run(run_id)
    if summary.status == RunStatus.RUNNING:
        return None
    now = time.time()
    await store.append([
        Event(run_id=run_id, seq=summary.last_seq + 1 + i, type=EventType.FINDING,
              step=summary.steps, ts=now, payload=payload)
        for i, payload in enumerate(fresh)
    ])
    return len(fresh)


@app.command()
@handle_errors
def doctor(
    run_id: RunArg,
    save: Annotated[bool, typer.Option(
        "--save/--no-save", help="Record the findings in the run's journal as `finding` "
                                 "events (once each).")] = True,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Look for pathologies in a run: repeated calls, unused results, cycles, steps that
    change nothing, retry storms, outlier steps; say why each matters and where to look.

    Findings are recorded in the journal of a run that has stopped, not of one still
    running (its process is the one appending to it).
    """
    run_id = full_run_id(db, run_id)

    async def work(store: Store) -> tuple[list[Any], int | None]:
        events = await read_events(store, run_id)
        findings = diagnose(events)
        saved: int | None = 0
        if save and findings:
            try:
                saved = await _record_findings(store, run_id, events)
            except StoreError as e:
                e.hint = e.hint or "run `tether doctor --no-save` to only print the findings"
                raise
        return findings, saved

    findings, saved = with_store(db, work, write=None if save else False)
    running = "the run is still running: findings not recorded (run the doctor again " \
              "once it stops)"
    if as_json:
        _dump({"run_id": run_id, "findings": [f.to_payload() for f in findings],
               "saved": saved or 0, **({"note": running} if saved is None else {})})
        return
    lines = render_findings(run_id, findings)
    if saved:
        lines.append(Text(f"recorded {saved} finding event(s) in the journal", "dim"))
    elif saved is None:
        lines.append(Text(running, "yellow"))
    show(console, lines)


# -- cost -------------------------------------------------------------------------------


@app.command()
@handle_errors
def cost(
    run_id: RunArg,
    subruns: SubrunsOption = True,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show what a run cost, step by step, and rolled up over its sub-runs."""
    run_id = full_run_id(db, run_id)

    async def work(store: Store) -> tuple[RunCost, DelegationOverhead]:
        tree = await load_run_tree(store, run_id, subruns=subruns)
        return tree_cost(tree), tree_overhead(tree)

    result, overhead = with_store(db, work)
    if as_json:
        _dump({**result.to_dict(), "delegation": overhead.to_dict()})
        return
    show(console, render_cost(result))
    if overhead.subruns:
        show(console, [render_overhead(overhead)])

