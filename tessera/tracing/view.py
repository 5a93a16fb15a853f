"""A run's timeline: rows by model or endpoint, shared by the chart (``tessera trace --png``) and the text
view (``tessera trace`` and the chat's ``/trace``).

:func:`timeline_rows` lays the spans out: one row per lane (a model, an endpoint, ``tool:<name>``), with
extra rows where steps on one lane overlap in time. :func:`timeline_text` draws those rows in characters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.errors import UserError
from tessera.tracing import CONTAINER_KINDS

if TYPE_CHECKING:
    from rich.console import RenderableType

    from tessera.types import Span, Trace

__all__ = ["PHASES", "Row", "load_trace", "phase", "step_label", "summary", "timeline_rows", "timeline_text"]

PHASES: dict[str, tuple[str, str, str]] = {
    "planning": ("-", "#b8c4d6", "planning"),
    "approval": ("-", "#f3d6d6", "waiting for your approval"),
    "subtask": ("-", "#e4e4e4", "subtask"),
    "join": ("-", "#d9cce3", "join"),
    "answer": ("-", "#c9e3c9", "answer"),
    "deps": (":", "#cfcfcf", "waiting for dependencies"),  # in the trace; not drawn
    "queue": (".", "#8c8c8c", "waiting for a slot"),
    "handoff": ("~", "#f2c14e", "handoff gap"),
    "recall": ("R", "#17a2b8", "memory recall"),
    "load": ("L", "#e07b39", "model load"),
    "prefill": ("P", "#4c8bd6", "prefill"),
    "decode": ("#", "#2e9e5b", "decode"),
    "tool": ("T", "#9b59b6", "tool"),
}
"""Per kind: the text view's character, the chart's colour, the legend's words."""
STYLES = {
    "queue": "bold",
    "handoff": "yellow",
    "recall": "cyan",
    "load": "red",
    "prefill": "blue",
    "decode": "green",
    "tool": "magenta",
}


def phase(span: Span) -> str:
    """The key of ``span`` in :data:`PHASES` (a queue wait for dependencies is ``deps``)."""
    return "deps" if span.kind == "queue" and span.attrs.get("wait") == "deps" else span.kind


@dataclass
class Row:
    """One row of the timeline: its label, its step spans (planning, subtasks, ...) and their parts."""

    label: str
    steps: list[Span] = field(default_factory=list)
    parts: list[Span] = field(default_factory=list)


def step_label(span: Span) -> str:
    """How a step is named on the timeline: ``planning``, ``s1``, ``answer`` (``planning#2`` on replans)."""
    if span.kind == "subtask":
        return span.name
    round_ = int(span.attrs.get("round", 0))
    return span.kind if round_ == 0 else f"{span.kind}#{round_ + 1}"


def timeline_rows(trace: Trace) -> list[Row]:
    """The rows, in order of first use; a lane's steps that overlap go on extra rows of that lane.

    A subtask is drawn from the moment its dependencies were done: waiting for them does not hold its
    model (that wait stays in the trace, as a ``queue`` span with ``wait="deps"``).
    """
    ready: dict[str, float] = {}
    for span in trace.spans:
        if phase(span) == "deps" and span.parent:
            ready[span.parent] = max(ready.get(span.parent, span.end), span.end)
    rows: list[Row] = []
    where: dict[str, Row] = {}
    lanes: dict[str, list[Row]] = {}
    steps = [
        s.model_copy(update={"start": min(ready.get(s.id, s.start), s.end)})
        for s in trace.spans
        if s.kind in CONTAINER_KINDS
    ]
    for step in sorted(steps, key=lambda s: s.start):
        options = lanes.setdefault(step.lane, [])
        row = next((r for r in options if all(s.end <= step.start for s in r.steps)), None)
        if row is None:
            label = step.lane if not options else f"{step.lane} ({len(options) + 1})"
            row = Row(label)
            options.append(row)
            at = max((rows.index(r) for r in options[:-1]), default=len(rows) - 1)
            rows.insert(at + 1, row)
        row.steps.append(step)
        where[step.id] = row
    for span in trace.spans:
        if span.kind in CONTAINER_KINDS or span.kind == "call" or phase(span) == "deps":
            continue  # a call's time is drawn by the load/prefill/decode/tool spans inside it
        row = where.get(span.parent or "")
        if row is not None and span.kind == "load" and span.lane != row.steps[0].lane:
            row = None  # a model loading in the background (preload) goes on that model's row
        if row is None:
            row = lanes[span.lane][0] if span.lane in lanes else None
        if row is None:
            row = Row(span.lane)
            rows.append(row)
            lanes[span.lane] = [row]
        row.parts.append(span)
    return rows


def timeline_text(trace: Trace, width: int = 64) -> RenderableType:
    """The timeline in characters: a row per lane, phases as letters, the critical path's steps in ``=``."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    total = max(trace.ended - trace.started, 1e-9)
    critical = set(trace.critical_path)
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("lane")
    table.add_column(f"0 … {total:.2f}s", no_wrap=True)
    table.add_column("steps")

    def cells(span: Span) -> range:
        first = int((span.start - trace.started) / total * width)
        last = int((span.end - trace.started) / total * width)
        return range(max(0, min(first, width - 1)), max(first + 1, min(last, width)))

    for row in timeline_rows(trace):
        chars, styles = [" "] * width, [""] * width
        for span in row.steps:
            mark = "=" if span.id in critical else "-"
            for i in cells(span):
                chars[i], styles[i] = mark, "bold red" if span.id in critical else "dim"
        for span in sorted(row.parts, key=lambda s: s.kind != "queue"):
            for i in cells(span):
                chars[i], styles[i] = PHASES.get(phase(span), ("?", "", ""))[0], STYLES.get(phase(span), "")
        bar = Text()
        for char, style in zip(chars, styles, strict=True):
            bar.append(char, style=style)
        names = " ".join(step_label(s) + ("*" if s.id in critical else "") for s in row.steps)
        table.add_row(row.label, bar, names)
    legend = "  ".join(f"{PHASES[k][0]} {PHASES[k][2]}" for k in STYLES) + "  = critical path step"
    return Group(table, Text(legend, style="dim"), Text(summary(trace)))


def summary(trace: Trace) -> str:
    """Critical path, overhead and time to the first subtask, in a few lines (the numbers of ``Timings``)."""
    by_id = {s.id: s for s in trace.spans}
    path = " → ".join(
        f"{step_label(by_id[i])} {_active(by_id[i]):.2f}s" for i in trace.critical_path if i in by_id
    )
    first = trace.time_to_first_subtask_s
    busy = {
        k: sum(s.seconds for s in trace.spans if s.kind == k)
        for k in ("recall", "load", "prefill", "decode", "tool")
    }
    work = "  ".join(f"{k} {v:.2f}s" for k, v in busy.items() if v)  # summed over parallel calls
    waited = sum(s.seconds for s in trace.spans if s.kind == "approval")
    planning = sum(s.seconds for s in trace.spans if s.kind == "planning")
    return "\n".join(
        [
            f"critical path  {path or '-'}  ({trace.critical_path_s:.2f}s)",
            f"total {trace.ended - trace.started:.2f}s  planning {planning:.3f}s"
            + f"  overhead {trace.overhead_s:.3f}s"
            + (f"  waiting for approval {waited:.2f}s" if waited else "")
            + (f"  first subtask at {first:.3f}s" if first is not None else ""),
            f"inside models, tools and recall: {work or '-'}",
        ]
    )


def _active(step: Span) -> float:
    """A step's own seconds: a subtask's from when it got its slot."""
    return max(0.0, step.end - float(step.attrs.get("started") or step.start))


def load_trace(path: Path) -> tuple[Trace, dict[str, Any]]:
    """The trace in a file that ``tessera run --json`` wrote (a RunResult, or a bare trace)."""
    import json

    from pydantic import ValidationError

    from tessera.types import Trace

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a JSON run result ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a JSON run result (expected an object)")
    raw = data.get("trace") if "spans" not in data else data
    if raw is None:
        raise UserError(f"{path}: no 'trace' in it (save a run with: tessera run --json TASK > {path.name})")
    try:
        return Trace.model_validate(raw), data
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UserError(f"{path}: trace.{where}: {first['msg']}") from None
