"""Commands that start, continue and list runs: run, resume, resolve, runs, show."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Column, Table

from ..core import RunStatus
from ..observe import JsonlLog, describe, finding_payloads, read_events
from ..runtime import Runner, RunResult, load_agent, parse_budget
from ..store import RunSummary, Store
from ._common import DbOption, JsonOption, console, handle_errors, seconds, when, with_store

LogFileOption = Annotated[
    Path | None,
    typer.Option("--log-file", help="Mirror every event to this JSONL file as it is "
                 "committed (see docs/journal.md).", show_default=False),
]


def _drive(
    db: Path | None, log_file: Path | None, work: Callable[[Runner], Awaitable[RunResult]]
) -> RunResult:
    """Run ``work`` with a Runner on the store, mirroring events to ``log_file`` if set."""

    async def main(store: Store) -> RunResult:
        log = JsonlLog(log_file) if log_file else None
        try:
            runner = Runner(store, observers=[log] if log else [],
                            reviewers=[finding_payloads])
            result = await work(runner)
            # The run had the real values; what is printed is redacted like every view.
            scrub = runner.redactor.redact
            return dataclasses.replace(result, output=scrub(result.output),
                                       error=scrub(result.error))
        finally:
            if log:
                log.close()

    return with_store(db, main)

app = typer.Typer()


def _print_result(result: RunResult) -> None:
    if result.status == RunStatus.COMPLETED:
        console.print(result.output, highlight=False, markup=False)
    else:
        error = result.error or {}
        console.print(f"[bold red]{result.status}[/]: {error.get('message', '')}", highlight=False)
        if error.get("hint"):
            console.print(f"  [bold]hint:[/] {error['hint']}", highlight=False)
    console.print(
        f"[dim]run {result.run_id} · {result.status} · {result.steps} steps · "
        f"{result.usage.input_tokens}+{result.usage.output_tokens} tokens · "
        f"${result.cost_usd:.6f}[/]\n[dim]inspect: tether show {result.run_id}[/]",
        highlight=False,
    )


def _finish(result: RunResult) -> None:
    _print_result(result)
    if result.status != RunStatus.COMPLETED:
        raise typer.Exit(1)


@app.command()
@handle_errors
def run(
    agent: Annotated[str, typer.Argument(help="The agent, as MODULE:ATTRIBUTE.")],
    task: Annotated[str, typer.Argument(help="What the agent should do.")],
    model: Annotated[str | None, typer.Option(help="Model selection string, e.g. "
                     "openai:gpt-4.1-mini or local (overrides the agent's).")] = None,
    db: DbOption = None,
    log_file: LogFileOption = None,
) -> None:
    """Run an agent on a task; print its answer and the run id."""
    spec = agent
    loaded = load_agent(spec)
    if model is not None:
        loaded = dataclasses.replace(loaded, model=model)

    _finish(_drive(db, log_file, lambda runner: runner.run(loaded, task, agent_spec=spec)))


@app.command()
@handle_errors
def resume(
    run_id: Annotated[str, typer.Argument(help="The run to continue.")],
    budget: Annotated[list[str] | None, typer.Option(
        help="Raise a limit, as LIMIT=VALUE (max_steps, max_input_tokens, "
             "max_output_tokens, max_cost_usd, max_seconds); repeatable.")] = None,
    release: Annotated[bool, typer.Option(
        "--release", help="Take a quarantined run out of quarantine and continue it.")] = False,
    db: DbOption = None,
    log_file: LogFileOption = None,
) -> None:
    """Continue a run from its journal (after a crash, a budget stop, or a resolve)."""
    overrides = parse_budget(budget or [])

    _finish(_drive(db, log_file, lambda runner: runner.resume(
        run_id, budget=overrides or None, release=release)))


@app.command()
@handle_errors
def resolve(
    run_id: Annotated[str, typer.Argument(help="The run that needs attention.")],
    call_id: Annotated[str, typer.Argument(help="The call in doubt (see `tether show`).")],
    result: Annotated[str, typer.Option(help="What the call returned, or a note that it "
                                        "did not take effect; the model will see it.")],
    db: DbOption = None,
) -> None:
    """Settle a tool call in doubt by recording its outcome; then `tether resume`."""
    with_store(db, lambda store: Runner(store).resolve(run_id, call_id, result=result))
    console.print(f"recorded; continue with: tether resume {run_id}")


def _duration(run: RunSummary) -> float:
    end = run.updated_at if run.status != RunStatus.RUNNING else time.time()
    return max(0.0, float(end - run.created_at))


@app.command("runs")
@handle_errors
def list_runs(
    status: Annotated[RunStatus | None, typer.Option(help="Only runs with this status.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only runs of this agent.")] = None,
    since: Annotated[datetime | None, typer.Option(
        help="Only runs started at or after this UTC time, e.g. 2026-11-25T08:00.",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"])] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs.")] = 50,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List runs, newest first."""
    after = None if since is None else since.replace(tzinfo=UTC).timestamp()
    found = with_store(db, lambda store: store.runs(status=status, agent=agent, since=after,
                                                    limit=limit))
    if as_json:
        rows = [dataclasses.asdict(r) | {"duration_s": _duration(r)} for r in found]
        print(json.dumps(rows, indent=2))
        return
    # Run ids are what people copy into the next command: never cut or wrapped.
    table = Table(Column("id", no_wrap=True), "agent", "status", "steps", "started (UTC)",
                  "duration", "tokens", "cost $", box=box.SIMPLE_HEAD, pad_edge=False)
    for r in found:
        table.add_row(r.run_id, r.agent, str(r.status), str(r.steps), when(r.created_at),
                      seconds(_duration(r)), f"{r.input_tokens + r.output_tokens}",
                      f"{r.cost_usd:.4f}")
    console.print(table)


@app.command()
@handle_errors
def show(
    run_id: Annotated[str, typer.Argument(help="The run to show.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a run's journal, event by event, in order."""

    async def load(store: Store) -> tuple[RunSummary, list]:  # type: ignore[type-arg]
        return await store.run(run_id), await read_events(store, run_id)

    summary, events = with_store(db, load)
    if as_json:
        print(json.dumps([e.to_dict() for e in events], indent=2))
        return
    console.print(f"[bold]{summary.run_id}[/] {summary.agent} · {summary.status} · "
                  f"{summary.steps} steps", highlight=False)
    table = Table("seq", "step", "event", "ms", "what")
    for e in events:
        table.add_row(str(e.seq), str(e.step), e.type,
                      "" if e.duration_ms is None else f"{e.duration_ms:.1f}",
                      describe(e, width=100))
    console.print(table)
