"""How ``tessera chat`` draws a run: the plan as a tree with each subtask's state, the answer as markdown,
and the timing breakdown of ``/trace``.

:class:`RunView` folds a run's events into what is on screen; rich renders it (live while the run goes,
then once more, static, when it is done).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from tessera.events import AnswerToken, Done, PlanReady, Replan, SubtaskFinished, SubtaskStarted, Token

if TYPE_CHECKING:
    from tessera.events import Event
    from tessera.types import Plan, RunResult, SubtaskResult

__all__ = ["RunView", "StreamedReply", "footer", "plan_tree", "trace_view"]

STATE_STYLES = {
    "queued": "dim",
    "running": "yellow",
    "done": "green",
    "failed": "bold red",
    "skipped": "magenta",
    "cancelled": "yellow",
    "rejected": "magenta",
    "not run": "dim",
}
INSTRUCTION_CHARS = 64


@dataclass
class SubtaskState:
    """What the screen knows about one subtask."""

    status: str = "queued"
    model: str | None = None
    tier: str | None = None
    started: float | None = None
    ended: float | None = None
    tokens: int = 0
    error: str | None = None


@dataclass
class RunView:
    """One run as it unfolds: plan, subtask states, the answer so far, and the result once done."""

    task: str
    started: float = field(default_factory=time.time)
    plan: Plan | None = None
    states: dict[str, SubtaskState] = field(default_factory=dict)
    answer: str = ""
    replans: list[str] = field(default_factory=list)
    fallback: bool = False
    result: RunResult | None = None
    markdown: bool = True
    """Draw the answer as markdown (a terminal); else as plain text."""

    def apply(self, event: Event) -> None:
        """Fold one event into the view."""
        if isinstance(event, PlanReady):
            done = {k: v for k, v in self.states.items() if v.status == "done"}
            self.states = {s.id: done.get(s.id, SubtaskState()) for s in event.plan.subtasks}
            self.plan, self.fallback = event.plan, event.fallback
        elif isinstance(event, SubtaskStarted):
            self.states[event.id] = SubtaskState("running", event.model, started=event.started)
        elif isinstance(event, Token):
            if event.id in self.states:
                self.states[event.id].tokens += 1
        elif isinstance(event, SubtaskFinished):
            self.states[event.result.id] = _finished(event.result, self.states.get(event.result.id))
        elif isinstance(event, Replan):
            self.replans.append(event.reason)
        elif isinstance(event, AnswerToken):
            self.answer += event.text
        elif isinstance(event, Done):
            self.result = event.result
            self.answer = event.result.answer or self.answer
            if event.result.plan is not None:
                self.plan = event.result.plan
            for sub in event.result.subtasks:
                self.states[sub.id] = _finished(sub, self.states.get(sub.id))
            if event.result.status != "awaiting_approval":  # the run is over: what never ran says so
                left = "rejected" if event.result.status == "rejected" else "not run"
                for state in self.states.values():
                    if state.status == "queued":
                        state.status = left

    def cancel(self) -> None:
        """Ctrl-C: what was queued or running is now cancelled."""
        now = time.time()
        for state in self.states.values():
            if state.status in ("queued", "running"):
                state.status, state.ended = "cancelled", now if state.started else None

    def __rich__(self) -> RenderableType:
        """The live frame: a spinner until the plan is in, then the tree and the answer so far."""
        if self.plan is None:
            return Spinner("dots", Text(" planning…", style="dim"))
        parts: list[RenderableType] = [plan_tree(self.plan, self.states, self._label()), Text("")]
        if self.answer:
            parts.append(self._answer())
        elif all(s.status in ("done", "failed", "skipped") for s in self.states.values()):
            parts.append(Spinner("dots", Text(" writing the answer…", style="dim")))
        return Group(*parts)

    def final(self) -> RenderableType:
        """The static view printed when the run is over: tree, answer, footer."""
        parts: list[RenderableType] = []
        if self.plan is not None:
            parts += [plan_tree(self.plan, self.states, self._label()), Text("")]
        if self.answer:
            parts.append(self._answer())
        if self.result is not None:
            parts.append(footer(self.result))
        return Group(*parts)

    def _answer(self) -> RenderableType:
        return Markdown(self.answer) if self.markdown else Text(self.answer)

    def _label(self) -> str:
        label = "plan"
        if self.fallback:
            label += " (fallback: the planner failed)"
        if self.replans:
            label += f" (replan {len(self.replans)}: {self.replans[-1]})"
        return label


class StreamedReply:
    """A reply being written (``/model``), drawn as markdown; a spinner until the first token."""

    def __init__(self) -> None:
        self.pieces: list[str] = []

    def __rich__(self) -> RenderableType:
        if not self.pieces:
            return Spinner("dots", Text(" thinking…", style="dim"))
        return Markdown("".join(self.pieces))


def _finished(sub: SubtaskResult, before: SubtaskState | None) -> SubtaskState:
    return SubtaskState(
        sub.status,
        sub.model,
        sub.tier,
        sub.started,
        sub.ended,
        sub.tokens or (before.tokens if before else 0),
        sub.error,
    )


def plan_tree(plan: Plan, states: dict[str, SubtaskState] | None = None, label: str = "plan") -> Tree:
    """The plan as a tree: a subtask hangs under its first dependency (others are named on its line)."""
    states = dict(states or {})
    tree = Tree(Text(label, style="bold"), guide_style="dim")
    ids = {s.id for s in plan.subtasks}
    nodes: dict[str, Tree] = {}
    now = time.time()
    for sub in plan.subtasks:
        parents = [d for d in sub.depends_on if d in ids and d in nodes]
        parent = nodes[parents[0]] if parents else tree
        line = _subtask_line(sub.id, sub.specialist, sub.instruction, states.get(sub.id), now)
        if len(parents) > 1:
            line.append(f"  (also after {', '.join(parents[1:])})", style="dim")
        nodes[sub.id] = parent.add(line)
    return tree


def _subtask_line(
    sid: str, specialist: str, instruction: str, state: SubtaskState | None, now: float
) -> Text:
    state = state or SubtaskState()
    line = Text()
    line.append(sid, style="bold cyan")
    line.append(f" {specialist}", style="cyan")
    line.append(f"  {state.status}", style=STATE_STYLES.get(state.status, ""))
    facts: list[str] = []
    if state.model:
        facts.append(state.model + (f"/{state.tier}" if state.tier else ""))
    if state.started:
        seconds = (state.ended or now) - state.started
        facts.append(f"{seconds:.2f}s")
        if state.tokens and seconds > 0:
            facts.append(f"{state.tokens / seconds:,.1f} tok/s")
    if facts:
        line.append("  " + "  ".join(facts), style="dim")
    text = " ".join(instruction.split())
    if len(text) > INSTRUCTION_CHARS:
        text = text[: INSTRUCTION_CHARS - 1] + "…"
    line.append(f"  {text}")
    if state.error:
        line.append(f"  {state.error}", style="red")
    return line


def footer(result: RunResult) -> Text:
    """One line: status, total, planning and overhead seconds."""
    timings = result.timings
    style = {"done": "green", "partial": "bold yellow"}.get(result.status, "bold red")
    line = Text()
    line.append(result.status, style=style)
    line.append(
        f" · total {timings.total_s:.2f}s · planning {timings.planning_s:.2f}s"
        f" · overhead {timings.overhead_s:.3f}s",
        style="dim",
    )
    return line


def trace_view(result: RunResult, started: float) -> RenderableType:
    """``/trace``: each subtask's start offset and duration, then the timeline (as ``tessera trace``)."""
    timings = result.timings
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for name, justify in (
        ("subtask", "left"),
        ("specialist", "left"),
        ("model", "left"),
        ("status", "left"),
        ("start", "right"),
        ("took", "right"),
        ("tokens", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for sub in sorted(result.subtasks, key=lambda s: s.started or float("inf")):
        start = f"+{sub.started - started:.2f}s" if sub.started else "-"
        took = f"{sub.ended - sub.started:.2f}s" if sub.started and sub.ended else "-"
        model = (sub.model or "-") + (f"/{sub.tier}" if sub.tier else "")
        status = Text(sub.status, style=STATE_STYLES.get(sub.status, ""))
        table.add_row(sub.id, sub.specialist, model, status, start, took, str(sub.tokens or "-"))
    lines = Text()
    lines.append(f"planning   {timings.planning_s:.3f}s")
    lines.append(f"  (recall {timings.recall_s:.3f}s)\n" if timings.recall_s else "\n")
    if timings.approval_s:
        lines.append(f"approval   {timings.approval_s:.3f}s  (waiting for you)\n")
    lines.append(f"overhead   {timings.overhead_s:.3f}s\n")
    lines.append(f"total      {timings.total_s:.3f}s")
    routes = routing_lines(result)
    parts: list[RenderableType] = [table, Text(""), lines, *([Text(""), routes] if routes.plain else [])]
    if result.trace is None:
        return Group(*parts)
    from tessera.tracing.view import timeline_text

    return Group(*parts, Text(""), timeline_text(result.trace, width=40))


def routing_lines(result: RunResult) -> Text:
    """Each routed subtask's first tier and why, its escalations and its cost (empty when none was)."""
    text = Text()
    for sub in result.subtasks:
        if sub.route is None:
            continue
        text.append(f"{sub.id}: ", style="bold")
        text.append(f"{sub.route} -> {sub.tier}, cost {sub.cost:g}\n")
        for step in sub.escalations:
            text.append(f"  escalated {step}\n", style="yellow")
    text.rstrip()
    return text
