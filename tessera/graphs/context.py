"""A run's context: what one run coordinates that is not graph state.

:class:`RunContext` holds the dependency signals, the concurrency slots, the tracer and the subtasks
started early while the plan streamed (:class:`EarlyStart`, whose events go through a :class:`Relay`).
:class:`~tessera.team.Team` makes one per run and passes it the LangGraph way: the graph is built with
``StateGraph(TeamState, context_schema=RunContext)`` and run with ``graph.astream(..., context=ctx)``; a
node takes ``runtime: Runtime[RunContext]`` and reads it with :func:`run_context`. The context is not
graph state: it is never checkpointed, and a resumed run gets a fresh one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.tracing import Tracer
from tessera.types import Plan, Subtask, SubtaskResult

if TYPE_CHECKING:
    from langgraph.runtime import Runtime

    from tessera.config import TeamConfig

__all__ = ["EarlyStart", "Relay", "RunContext", "default_output_dir", "keep_early", "run_context"]

_UNCAPPED = 1 << 20


class Relay:
    """Where an early-started subtask's events go: the plan node's stream writer while planning runs, then
    a buffer until the subtask's own ``run_subtask`` node attaches its writer (LangGraph drops what a
    finished node writes)."""

    def __init__(self, writer: Callable[[Any], None]) -> None:
        self._writer: Callable[[Any], None] | None = writer
        self._buffer: list[Any] = []

    def __call__(self, event: Any) -> None:
        if self._writer is None:
            self._buffer.append(event)
        else:
            self._writer(event)

    def detach(self) -> None:
        """The plan node is ending: hold events from now on."""
        self._writer = None

    def attach(self, writer: Callable[[Any], None]) -> None:
        """Send the held events, and the rest, to ``writer``."""
        held, self._buffer = self._buffer, []
        for event in held:
            writer(event)
        self._writer = writer


@dataclass
class EarlyStart:
    """A subtask started while its plan was still streaming."""

    subtask: Subtask
    task: asyncio.Task[SubtaskResult]
    relay: Relay


def keep_early(ctx: RunContext, plan: Plan | None) -> None:
    """Cancel early-started subtasks that the final plan does not have exactly as they were started; hold
    the events of the rest until their ``run_subtask`` nodes take them over."""
    final = {s.id: s for s in plan.subtasks} if plan is not None else {}
    for subtask_id, early in list(ctx.early.items()):
        early.relay.detach()
        if final.get(subtask_id) != early.subtask:
            early.task.cancel()
            del ctx.early[subtask_id]


@dataclass
class RunContext:
    """Per-run coordination that is not state: dependency signals, the concurrency limit, the tracer.

    Args:
        max_concurrency: subtasks running at once (the rest wait for a slot); None: no run-wide cap, so
            only each model's own limit applies (a llama.cpp model runs one generation at a time).
        stream_tokens: stream model output as ``token`` / ``answer_token`` events.
        output_dir: where this run's tools write files.
    """

    max_concurrency: int | None
    stream_tokens: bool = False
    output_dir: Path | None = None
    """Where this run's tools write files (default: ``<state_dir>/outputs``)."""
    tracer: Tracer = field(default_factory=Tracer)
    """The run's spans for its :class:`~tessera.types.Trace` (see :mod:`tessera.tracing`)."""
    early: dict[str, EarlyStart] = field(default_factory=dict)
    """Subtasks started while the plan was still streaming, by id."""
    preloaded: set[str] = field(default_factory=set)
    _finished: dict[str, asyncio.Future[SubtaskResult]] = field(default_factory=dict)
    _slots: asyncio.Semaphore | None = None

    def finished(self, subtask_id: str) -> asyncio.Future[SubtaskResult]:
        """Resolves with the subtask's result when it ends (in this run or a resumed one)."""
        if subtask_id not in self._finished:
            self._finished[subtask_id] = asyncio.get_running_loop().create_future()
        return self._finished[subtask_id]

    def publish(self, result: SubtaskResult) -> None:
        """Tell the subtasks waiting on ``result.id`` that it ended."""
        future = self.finished(result.id)
        if not future.done():
            future.set_result(result)

    @property
    def slots(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_concurrency or _UNCAPPED)
        return self._slots


def run_context(runtime: Runtime[Any] | None, team: TeamConfig) -> RunContext:
    """The run's context from a node's ``runtime``; a fresh one when the caller passed none (a graph run
    without ``context=``, or embedded in a graph whose context is its own)."""
    ctx = runtime.context if runtime is not None else None
    return ctx if isinstance(ctx, RunContext) else RunContext(team.runtime.max_concurrency)


def default_output_dir(config: TeamConfig) -> Path:
    """Where tools write files when the run does not say: ``tools.tts.output_dir`` or the state dir."""
    return config.tools.tts.output_dir or config.resolved_state_dir / "outputs"
