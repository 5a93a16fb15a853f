"""``Team``: load a team config, build its graph, and run tasks on it."""

from __future__ import annotations

import os
import time
import uuid
from typing import TYPE_CHECKING, Any

from tessera._async import run_sync
from tessera.config import TeamConfig, load_team
from tessera.graphs.build import build_graph
from tessera.graphs.nodes import RunContext
from tessera.models.pool import ModelPool
from tessera.types import RunResult, Timings

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph

__all__ = ["Team"]


class Team:
    """A team of specialist models, ready to run tasks.

    Args:
        config: the team config (see :meth:`from_yaml`).
        pool: the model pool to use; by default one sized by ``runtime.memory_budget_mb``.
    """

    def __init__(self, config: TeamConfig, *, pool: ModelPool | None = None) -> None:
        self.config = config
        self.pool = pool or ModelPool.from_team(config)
        self._graph: CompiledStateGraph | None = None

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> Team:
        """Load a team from its YAML file."""
        return cls(load_team(path))

    @property
    def graph(self) -> CompiledStateGraph:
        """The compiled LangGraph: ``plan -> run_subtask x N -> join -> answer``."""
        if self._graph is None:
            self._graph = build_graph(self.config, self.pool)
        return self._graph

    async def arun(self, task: str, thread_id: str | None = None) -> RunResult:
        """Plan ``task``, run its subtasks in parallel where the DAG allows, and answer."""
        ctx = RunContext(self.config.runtime.max_concurrency)
        thread = thread_id or uuid.uuid4().hex[:12]
        config: dict[str, Any] = {
            "configurable": {"thread_id": thread, "tessera_run": ctx},
            # every subtask of a plan is in flight at once (most just wait); the real limit is ctx.slots
            "max_concurrency": self.config.planner.max_subtasks * (self.config.planner.max_replans + 1) + 4,
            "recursion_limit": 25 + 4 * self.config.planner.max_replans,
        }
        started = time.monotonic()
        state = await self.graph.ainvoke(
            {"task": task, "replans": 0, "notes": []},
            config,  # type: ignore[call-overload]
        )
        total = time.monotonic() - started
        return _result(state, thread, total, ctx, started)

    def run(self, task: str, thread_id: str | None = None) -> RunResult:
        """Synchronous :meth:`arun`."""
        return run_sync(self.arun(task, thread_id))

    def close(self) -> None:
        """Unload the team's models."""
        self.pool.close()


def _result(state: dict[str, Any], thread: str, total: float, ctx: RunContext, started: float) -> RunResult:
    plan = state.get("plan")
    results = state.get("results") or {}
    ordered = [results[s.id] for s in plan.subtasks if s.id in results] if plan else list(results.values())
    busy = _union_length(ctx.spans, started, started + total)
    failed = not state.get("answer") and any(r.status != "done" for r in ordered)
    return RunResult(
        answer=state.get("answer", ""),
        plan=plan,
        subtasks=ordered,
        replans=state.get("replans", 0),
        timings=Timings(
            total_s=total, planning_s=state.get("planning_s", 0.0), overhead_s=max(0.0, total - busy)
        ),
        thread_id=thread,
        status="failed" if failed else "done",
        notes=state.get("notes", []),
    )


def _union_length(spans: list[tuple[float, float]], lo: float, hi: float) -> float:
    """Seconds of [lo, hi] covered by at least one span (parallel calls count once)."""
    total, end = 0.0, lo
    for start, stop in sorted(spans):
        start, stop = max(start, end), min(stop, hi)
        if stop > start:
            total += stop - start
            end = stop
    return total
