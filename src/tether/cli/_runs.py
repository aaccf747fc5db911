"""Commands that start, continue and list runs: run, resume, resolve, runs, threads,
show."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Column, Table
from rich.text import Text

from ..core import ConfigurationError, RunStatus, TetherError, new_id
from ..observe import JsonlLog, finding_payloads, read_events
from ..orchestration import team_reviewer
from ..runtime import (
    Runner,
    RunResult,
    absolute_spec,
    list_threads,
    load_agent,
    parse_budget,
    parse_thread_key,
)
from ..store import RunSummary, Store
from ._common import (
    DbOption,
    JsonOption,
    console,
    errors,
    full_run_id,
    handle_errors,
    seconds,
    when,
    with_store,
)
from ._observe_render import render_events, write_json_array
from ._observe_render import show as show_lines
from ._progress import Progress

LogFileOption = Annotated[
    Path | None,
    typer.Option("--log-file", help="Mirror every event to this JSONL file as it is "
                 "committed (see docs/journal.md).", show_default=False),
]


def _drive(
    db: Path | None, log_file: Path | None, work: Callable[[Runner], Awaitable[RunResult]]
) -> RunResult:
    """Run ``work`` with a Runner on the store, mirroring events to ``log_file`` if set.

    The first Ctrl-C stops the run cleanly (finished outcomes committed, the run paused,
    exit 130 with the command to resume); a second one exits at once.
    """

    async def main(store: Store) -> RunResult:
        log = JsonlLog(log_file) if log_file else None
        loop = asyncio.get_running_loop()
        progress = Progress(errors)
        runner = Runner(store, observers=[log] if log else [],
                        reviewers=[finding_payloads, team_reviewer])

        def interrupted() -> None:
            errors.print("[bold]interrupted[/]: finishing what is in flight; Ctrl-C again "
                         "to exit at once", highlight=False)
            loop.remove_signal_handler(signal.SIGINT)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            runner.interrupt()

        loop.add_signal_handler(signal.SIGINT, interrupted)
        try:
            with progress:
                async with progress.follow(runner.stream):
                    result = await work(runner)
            # The run had the real values; what is printed is redacted like every view.
            scrub = runner.redactor.redact
            error = result.error
            return dataclasses.replace(result, output=scrub(result.output), error=None if (
                error is None) else TetherError.from_dict(scrub(error.details or error.to_dict())))
        finally:
            loop.remove_signal_handler(signal.SIGINT)
            if log:
                log.close()

    return with_store(db, main, write=True)


#: The ``tether`` command line (Typer); :func:`main` runs it.
app = typer.Typer()


def _print_result(result: RunResult) -> None:
    # Text, not str: the answer and errors are printed as they are (no markup, no emoji).
    if result.status == RunStatus.COMPLETED:
        console.print(Text(str(result.output)), highlight=False)
    else:
        error = result.error
        console.print(Text.assemble((str(result.status), "bold red"),
                                    f": {error.message if error else ''}"), highlight=False)
        if error is not None and error.hint:
            console.print(Text.assemble(("  hint:", "bold"), f" {error.hint}"),
                          highlight=False)
    console.print(
        f"[dim]run {result.run_id} · {result.status} · {result.steps} steps · "
        f"{result.usage.input_tokens}+{result.usage.output_tokens} tokens · "
        f"${result.cost_usd:.6f}[/]\n[dim]inspect: tether show {result.run_id}[/]",
        highlight=False,
    )


def _finish(result: RunResult) -> None:
    if result.status == RunStatus.PAUSED:
        errors.print(f"run {result.run_id} paused; continue with: tether resume "
                     f"{result.run_id}", highlight=False, markup=False)
        raise typer.Exit(130)
    _print_result(result)
    if result.status != RunStatus.COMPLETED:
        raise typer.Exit(1)


BudgetOption = Annotated[list[str] | None, typer.Option(
    help="A limit, as LIMIT=VALUE (max_steps, max_input_tokens, max_output_tokens, "
         "max_cost_usd, max_seconds); repeatable.")]


@app.command()
@handle_errors
def run(
    agent: Annotated[str, typer.Argument(help="The agent, as MODULE:ATTRIBUTE or "
                                         "FILE.py:ATTRIBUTE.")],
    task: Annotated[str, typer.Argument(help="What the agent should do.")],
    model: Annotated[str | None, typer.Option(help="Model selection string, e.g. "
                     "openai:gpt-4.1-mini or local (overrides the agent's).")] = None,
    budget: BudgetOption = None,
    max_steps: Annotated[int | None, typer.Option(
        help="At most this many model calls (same as --budget max_steps=N).")] = None,
    thread: Annotated[str | None, typer.Option(
        help="Continue this conversation: an agent with memory sees the thread's earlier "
             "runs and memories (see `tether threads`).")] = None,
    db: DbOption = None,
    log_file: LogFileOption = None,
) -> None:
    """Run an agent on a task; print its run id at once, then its answer."""
    loaded = load_agent(agent)
    limits = parse_budget(budget or [])
    if max_steps is not None:
        limits["max_steps"] = max_steps
    if model is not None:
        loaded = dataclasses.replace(loaded, model=model)
    if limits:
        try:
            loaded = dataclasses.replace(loaded, budget=loaded.budget.raised(limits))
        except TypeError as e:
            raise ConfigurationError(f"not a budget limit: {e}") from e
    spec = absolute_spec(agent)

    async def start(runner: Runner) -> RunResult:
        run_id = new_id("run_", runner.ids)  # the Runner's injected id source
        errors.print(f"run {run_id} started (Ctrl-C stops it cleanly; `tether show {run_id}`)",
                     highlight=False, markup=False)
        return await runner.run(loaded, task, agent_spec=spec, run_id=run_id, thread=thread)

    _finish(_drive(db, log_file, start))


@app.command()
@handle_errors
def resume(
    run_id: Annotated[str, typer.Argument(help="The run to continue.")],
    budget: Annotated[list[str] | None, typer.Option(
        help="Raise a limit, as LIMIT=VALUE (max_steps, max_input_tokens, "
             "max_output_tokens, max_cost_usd, max_seconds); repeatable.")] = None,
    release: Annotated[bool, typer.Option(
        "--release", help="Take a quarantined run out of quarantine and continue it.")] = False,
    model: Annotated[str | None, typer.Option(
        help="Continue on this model instead of the one the run started with "
             "(journaled as a decision).")] = None,
    agent: Annotated[str | None, typer.Option(
        help="Load the agent from this spec instead of the one the run recorded.")] = None,
    db: DbOption = None,
    log_file: LogFileOption = None,
) -> None:
    """Continue a run from its journal (after a crash, Ctrl-C, a budget stop, or a resolve)."""
    run_id = full_run_id(db, run_id)
    overrides = parse_budget(budget or [])
    loaded = load_agent(agent) if agent else None

    _finish(_drive(db, log_file, lambda runner: runner.resume(
        run_id, loaded, model=model, budget=overrides or None, release=release)))


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
    run_id = full_run_id(db, run_id)
    with_store(db, lambda store: Runner(store).resolve(run_id, call_id, result=result),
               write=True)
    console.print(f"recorded; continue with: tether resume {run_id}", markup=False)


@app.command()
@handle_errors
def approve(
    run_id: Annotated[str, typer.Argument(help="The run that needs attention.")],
    call_id: Annotated[str, typer.Argument(help="The call waiting for approval (see "
                                           "`tether show`).")],
    deny: Annotated[bool, typer.Option("--deny", help="Deny the call: it does not run and "
                                       "the model is told.")] = False,
    reason: Annotated[str, typer.Option(help="Why; recorded, and told to the model when "
                                        "denied.")] = "",
    db: DbOption = None,
) -> None:
    """Approve (or --deny) a tool call that waits for approval; then `tether resume`."""
    run_id = full_run_id(db, run_id)
    with_store(db, lambda store: Runner(store).approve(run_id, call_id, deny=deny,
                                                       reason=reason), write=True)
    what = "denied" if deny else "approved"
    console.print(f"{what}; continue with: tether resume {run_id}", markup=False)


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
        table.add_row(r.run_id, Text(r.agent), str(r.status), str(r.steps), when(r.created_at),
                      seconds(_duration(r)), f"{r.input_tokens + r.output_tokens}",
                      f"{r.cost_usd:.4f}")
    console.print(table)


@app.command("threads")
@handle_errors
def list_threads_cmd(
    limit: Annotated[int, typer.Option(help="Look through this many most recent runs.")] = 1000,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List threads (conversations continued by `tether run --thread`) and their runs."""
    found = with_store(db, lambda store: list_threads(store, limit=limit))
    if as_json:  # a thread is its name within a scope: the agent's and the user's
        print(json.dumps([{"thread": name, "agent": agent, "user": user,
                           "runs": [dataclasses.asdict(r) for r in runs]}
                          for (agent, user, name), runs in
                          ((parse_thread_key(t), runs) for t, runs in found.items())],
                         indent=2, default=str))
        return
    table = Table(Column("thread", no_wrap=True), "user", Column("run", no_wrap=True),
                  "agent", "status", "steps", "started (UTC)", "task", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    for thread, runs in found.items():
        _, user, name = parse_thread_key(thread)
        for i, r in enumerate(runs):
            table.add_row(Text(name) if i == 0 else "", Text(user or "") if i == 0 else "",
                          r.run_id, Text(r.agent), str(r.status), str(r.steps),
                          when(r.created_at), Text(r.task[:60]))
    console.print(table)


@app.command()
@handle_errors
def show(
    run_id: Annotated[str, typer.Argument(help="The run to show.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a run's journal, event by event, in order."""
    run_id = full_run_id(db, run_id)

    async def load(store: Store) -> tuple[RunSummary, list]:  # type: ignore[type-arg]
        return await store.run(run_id), await read_events(store, run_id)

    summary, events = with_store(db, load)
    if as_json:
        write_json_array(sys.stdout, (e.to_dict() for e in events))
        return
    show_lines(console, render_events(
        f"{summary.run_id} {summary.agent} · {summary.status} · {summary.steps} steps", events))
