"""Plain runtime types: plans, subtask results and run results. They serialize to JSON."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "MAX_TASK_CHARS",
    "Approval",
    "Plan",
    "RunResult",
    "RunStatus",
    "Span",
    "Subtask",
    "SubtaskResult",
    "Timings",
    "Trace",
    "references",
    "union_length",
]

_REF = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")

MAX_TASK_CHARS = 8000
"""The longest task, and the longest subtask instruction: a one-subtask plan carries its whole task."""


class Subtask(BaseModel):
    """One node of a plan: what to do, who does it, and what it waits for."""

    id: str = Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_.-]+$")
    specialist: str = Field(min_length=1, max_length=48)
    instruction: str = Field(min_length=1, max_length=MAX_TASK_CHARS)
    depends_on: list[str] = Field(default_factory=list, max_length=16)


class Plan(BaseModel):
    """A DAG of subtasks. An instruction may quote an upstream result with ``{{id}}``."""

    subtasks: list[Subtask] = Field(min_length=1, max_length=64)

    def by_id(self) -> dict[str, Subtask]:
        return {s.id: s for s in self.subtasks}


def references(instruction: str) -> list[str]:
    """The subtask ids an instruction quotes with ``{{id}}``."""
    return _REF.findall(instruction)


def fill_references(instruction: str, outputs: dict[str, str]) -> str:
    """Replace each ``{{id}}`` with that subtask's output."""
    return _REF.sub(lambda m: outputs.get(m.group(1), m.group(0)), instruction)


def hand_over(instruction: str, outputs: dict[str, str]) -> str:
    """The instruction a subtask runs with its dependencies' ``outputs``: quoted ones filled in, the others
    appended under "Input from earlier steps", so that a dependency's result always reaches it."""
    quoted = set(references(instruction))
    text = fill_references(instruction, outputs)
    rest = [output for task_id, output in outputs.items() if task_id not in quoted]
    if not rest:
        return text
    return text + "\n\nInput from earlier steps:\n" + "\n".join(rest)


Status = Literal["done", "failed", "skipped"]


class SubtaskResult(BaseModel):
    """What running one subtask produced, and what it cost."""

    id: str
    specialist: str
    model: str | None = None
    tier: str | None = None
    """The routing tier (model) it finished on; None for a pinned model."""
    route: str | None = None
    """Why routing chose its first tier."""
    escalations: list[str] = Field(default_factory=list)
    """One line per escalation: ``small -> medium: <why small failed>``."""
    cost: float = 0.0
    """Relative cost: tokens / 1000 x the model's ``cost``."""
    status: Status
    output: str = ""
    attempts: int = 0
    started: float | None = None
    ended: float | None = None
    error: str | None = None
    tokens: int = 0
    busy_s: float = 0.0
    """Seconds spent inside model or tool calls (the rest of the span is framework overhead)."""
    artifacts: dict[str, Any] = Field(default_factory=dict)
    """Kind-specific extras: the coder's ``code``, a WAV file's ``path`` and ``duration_s``, ..."""
    endpoint: str | None = None
    """The URL of the remote endpoint that served its last model call (None for local models)."""


def union_length(
    spans: list[tuple[float, float]], lo: float = float("-inf"), hi: float = float("inf")
) -> float:
    """Seconds of [lo, hi] covered by at least one span (parallel calls count once)."""
    total, end = 0.0, lo
    for start, stop in sorted(spans):
        start, stop = max(start, end), min(stop, hi)
        if stop > start:
            total += stop - start
            end = stop
    return total


class Timings(BaseModel):
    """Where a run's wall time went, all read from its :class:`Trace` (one clock, so they agree)."""

    total_s: float
    planning_s: float
    """The planning steps, their recall of long-term memory included."""
    overhead_s: float
    """Wall time not inside a model or tool call, a memory recall, or a wait for the user's approval."""
    recall_s: float = 0.0
    """Recalling long-term memories for the planner (a part of ``planning_s``)."""
    approval_s: float = 0.0
    """Waiting for the user to accept, edit or reject a plan (a part of ``total_s``, not of overhead)."""
    remember_s: float = 0.0
    """Writing the run to long-term memory after it finished (after ``total_s``, not a part of it): a new
    process loads the embedder for it."""


class Span(BaseModel):
    """One timed piece of a run (see :mod:`tessera.tracing`): epoch seconds, a chart row, free attributes."""

    kind: str
    """planning, recall, approval, queue, subtask, load, prefill, decode, tool, handoff, answer or join."""
    name: str = ""
    """What it is about: a subtask id, a tool name, a model call."""
    id: str = ""
    parent: str | None = None
    """The ``id`` of the span it belongs to (a subtask, planning, the answer); None for the run itself."""
    lane: str = ""
    """The chart row: the model or endpoint (``tool:<name>`` for tools)."""
    start: float
    end: float
    attrs: dict[str, Any] = Field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return max(0.0, self.end - self.start)


class Trace(BaseModel):
    """A run's spans and what follows from them."""

    started: float
    ended: float
    spans: list[Span] = Field(default_factory=list)
    critical_path: list[str] = Field(default_factory=list)
    """Span ids from planning through the subtasks that gated each other to the answer."""
    critical_path_s: float = 0.0
    overhead_s: float = 0.0
    """Wall time not inside a load, prefill, decode, tool, recall or approval span, nor a model or tool call
    as its caller timed it."""
    time_to_first_subtask_s: float | None = None


class Approval(BaseModel):
    """The user's verdict on a proposed plan (``planner.approve: true``)."""

    action: Literal["accept", "edit", "reject"]
    plan: Plan | None = None
    """The edited plan (``edit`` only)."""
    reason: str = ""

    @classmethod
    def accept(cls) -> Approval:
        return cls(action="accept")

    @classmethod
    def edit(cls, plan: Plan | dict[str, Any]) -> Approval:
        return cls(action="edit", plan=Plan.model_validate(plan))

    @classmethod
    def reject(cls, reason: str = "") -> Approval:
        return cls(action="reject", reason=reason)


RunStatus = Literal["done", "partial", "failed", "awaiting_approval", "rejected", "interrupted"]
"""``done``: every subtask finished and the answer is written. ``partial``: there is an answer, but some
subtasks failed or were skipped (or the team's long-term memory could not be used); ``notes`` and the
subtasks say what. ``failed``: no answer. These three are final; ``awaiting_approval`` waits for
:meth:`Team.resume` with an :class:`Approval`; ``rejected`` means the user rejected the plan;
``interrupted`` is a run that stopped part way (a killed process) and can be resumed."""


class RunResult(BaseModel):
    """The outcome of one task: the JSON that ``tessera run --json`` prints."""

    answer: str
    plan: Plan | None
    subtasks: list[SubtaskResult]
    replans: int = 0
    timings: Timings
    thread_id: str | None = None
    status: RunStatus = "done"
    notes: list[str] = Field(default_factory=list)
    trace: Trace | None = None
    """The run's spans, critical path and overhead (None for a result read back from a checkpoint)."""

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def unfinished(self) -> list[SubtaskResult]:
        """The subtasks that did not finish: failed or skipped."""
        return [sub for sub in self.subtasks if sub.status != "done"]

    def failure_summary(self) -> str | None:
        """``N of M subtasks failed: s2 (coder: why), ...``; None when every subtask finished."""
        unfinished = self.unfinished
        planned = len(self.plan.subtasks) if self.plan else len(self.subtasks)
        missing = [s.id for s in self.plan.subtasks] if self.plan else []
        missing = [i for i in missing if i not in {sub.id for sub in self.subtasks}]
        if not unfinished and not missing:
            return None
        parts = [
            f"{sub.id} ({sub.specialist}"
            + (" skipped" if sub.status == "skipped" else "")
            + (f": {sub.error}" if sub.error else "")
            + ")"
            for sub in unfinished
        ] + [f"{i} (did not run)" for i in missing]
        return f"{len(parts)} of {planned} subtasks failed: " + "; ".join(parts)
