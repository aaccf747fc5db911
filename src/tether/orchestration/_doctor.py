"""The doctor across runs: team pathologies found from the journals alone.

- ``duplicate_subrun``: two children of one run given the same job (same subagent and
  brief): the work was done twice.
- ``unused_subrun_output``: a child's answer that nothing the parent did afterwards
  uses (no word of four letters or more that it added to its brief appears in the
  parent's later model output or in the inputs of a later child's brief).
- ``delegation_loop``: one subagent given the same brief three times or more.

Each finding is a ``finding`` payload (``kind``, ``steps``, ``message``,
``how_to_look``, ``subject``), as the doctor in :mod:`tether.observe` writes them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from ..core import (
    Event,
    EventType,
    ModelResponsePayload,
    RunCompletedPayload,
    SubrunCompletedPayload,
    SubrunStartedPayload,
    payload_of,
)
from ..store import Store

_WORD = re.compile(r"[A-Za-z0-9_]{4,}")


def team_findings(
    parent: Sequence[Event], children: Mapping[str, Sequence[Event]], *, loop_at: int = 3,
) -> list[dict[str, Any]]:
    """Findings about a run's delegations, from its journal and its children's."""
    run_id = parent[0].run_id if parent else ""
    started = [e for e in parent if e.type == EventType.SUBRUN_STARTED]
    same: dict[tuple[str, str], list[Event]] = defaultdict(list)
    for e in started:
        sp = payload_of(e, SubrunStartedPayload)
        digest = sp.brief_digest or sp.task
        same[(str(sp.agent), str(digest))].append(e)
    findings: list[dict[str, Any]] = []
    for (agent, _), events in same.items():
        ids = sorted({payload_of(e, SubrunStartedPayload).child_run_id for e in events})
        if len(ids) < 2:
            continue
        steps = sorted({e.step for e in events})
        kind = "delegation_loop" if len(ids) >= loop_at else "duplicate_subrun"
        findings.append({
            "kind": kind, "steps": steps, "subject": f"{agent}:{ids[0]}",
            "message": (f"subagent {agent!r} was given the same brief {len(ids)} times "
                        f"(runs {', '.join(ids)}): " +
                        ("a delegation loop; the run did not know when to stop" if
                         kind == "delegation_loop" else "the same work was done twice")),
            "how_to_look": f"tether trace {run_id}",
        })
    later_text: list[tuple[int, str]] = []
    for e in parent:
        if e.type == EventType.MODEL_RESPONSE:
            msg = payload_of(e, ModelResponsePayload).message or {}
            args = " ".join(str(c.get("arguments", "")) for c in msg.get("tool_calls") or [])
            later_text.append((e.seq, f"{msg.get('content') or ''} {args}"))
        elif e.type == EventType.SUBRUN_STARTED:  # what a later brief was given
            task = payload_of(e, SubrunStartedPayload).task or ""
            later_text.append((e.seq, task.partition("Inputs (JSON):")[2]))
        elif e.type == EventType.RUN_COMPLETED:
            later_text.append((e.seq, payload_of(e, RunCompletedPayload).output or ""))
    for e in parent:
        if e.type != EventType.SUBRUN_COMPLETED:
            continue
        done = payload_of(e, SubrunCompletedPayload)
        if done.status != "completed":
            continue
        output = done.output
        if output is None:
            output = next((payload_of(c, RunCompletedPayload).output for c in
                           children.get(done.child_run_id, ())
                           if c.type == EventType.RUN_COMPLETED), None)
        words = set(_WORD.findall(str(output or "")))
        brief = next((payload_of(s, SubrunStartedPayload).task or "" for s in started if
                      payload_of(s, SubrunStartedPayload).child_run_id == done.child_run_id),
                     "")
        words = (words - set(_WORD.findall(brief))) or words  # what the child added
        if not words:
            continue
        after = " ".join(text for seq, text in later_text if seq > e.seq)
        if not any(w in after for w in words):
            child = done.child_run_id
            findings.append({
                "kind": "unused_subrun_output", "steps": [e.step],
                "subject": str(child),
                "message": (f"the answer of subagent {done.agent!r} (run "
                            f"{child}) is never used by what the parent did next: the "
                            "work was wasted or its result ignored"),
                "how_to_look": f"tether show {child}",
            })
    return findings


async def diagnose_team(store: Store, run_id: str) -> list[dict[str, Any]]:
    """:func:`team_findings` for a run in ``store`` (its children read from there)."""
    parent = await store.read(run_id)
    children = {r.run_id: await store.read(r.run_id)
                for r in await store.runs(parent_run_id=run_id, limit=1000)}
    return team_findings(parent, children)


def team_reviewer(events: Sequence[Event]) -> list[dict[str, Any]]:
    """A :class:`~tether.runtime.Reviewer` (``Runner(reviewers=[team_reviewer])``): the
    team findings of a run when it stops, from its own journal (an answer kept only in
    a child's journal, over ``ARTIFACT_CHARS``, is not checked for use)."""
    return team_findings(events, {})
