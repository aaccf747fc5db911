"""After-the-fact exports of a stored run: JSONL events and OpenTelemetry spans.

Every export is redacted (by default with :meth:`Redactor.from_env`), whether or not
the journal already was: what leaves the machine is scrubbed here too.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..core import (
    Event,
    Redactor,
    SubrunStartedPayload,
)
from ..store import Store
from ._load import RunTree, load_run_tree, read_events, root_run_id
from ._otlp import OtlpSpan, capture_content_default, otlp_spans, span_id_for, trace_id_for
from ._spans import build_trace, kind_of


def redact_tree(tree: RunTree, redactor: Redactor) -> RunTree:
    """A copy of ``tree`` with every event redacted."""
    return RunTree(summary=tree.summary,
                   events=[redactor.redact_event(e) for e in tree.events],
                   children=[redact_tree(c, redactor) for c in tree.children])


async def export_events(
    store: Store, run_id: str, *, redactor: Redactor | None = None, subruns: bool = False
) -> list[Event]:
    """The run's events (and its sub-runs', run by run, if asked), redacted."""
    scrub = redactor if redactor is not None else Redactor.from_env()
    tree = await load_run_tree(store, run_id, subruns=subruns)
    return [scrub.redact_event(e) for t in tree.walk() for e in t.events]


async def _parent_span(store: Store, tree: RunTree) -> bytes | None:
    """The span id, in its parent run, of the span that started this sub-run."""
    parent = tree.summary.parent_run_id
    if parent is None:
        return None
    owner = "run"
    for e in await read_events(store, parent):
        data = e.data
        if isinstance(data, SubrunStartedPayload) and data.child_run_id == tree.run_id:
            if e.span_id and kind_of(e.span_id) in ("model", "tool"):
                owner = e.span_id
            break
    return span_id_for(parent, owner)


async def export_otlp_spans(
    store: Store,
    run_id: str,
    *,
    include_content: bool | None = None,
    redactor: Redactor | None = None,
    subruns: bool = True,
    tool_prices: Mapping[str, float] | None = None,
    full_prompts: bool = False,
) -> list[OtlpSpan]:
    """The OpenTelemetry GenAI spans of a stored run and (by default) its sub-runs.

    The trace id is derived from the top-level ancestor's run id, so a sub-run
    exported alone still lands in its parent's trace. Message content is included
    when ``include_content`` is true (default:
    ``$OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``); everything is redacted
    with ``redactor`` (default :meth:`Redactor.from_env`). A chat span carries its
    prompt's head and what its request adds to the previous one, unless
    ``full_prompts`` is set (see :func:`otlp_spans`).
    """
    if include_content is None:
        include_content = capture_content_default()
    scrub = redactor if redactor is not None else Redactor.from_env()
    tree = redact_tree(await load_run_tree(store, run_id, subruns=subruns), scrub)
    trace_id = trace_id_for(await root_run_id(store, run_id))
    root = build_trace(tree, tool_prices=tool_prices)
    events = {t.run_id: t.events for t in tree.walk()}
    return otlp_spans(root, trace_id=trace_id, include_content=include_content,
                      events=events, parent_span_id=await _parent_span(store, tree),
                      full_prompts=full_prompts)
