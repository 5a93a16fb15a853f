"""``Team``: load a team config, build its graph, and run, stream and resume tasks on it.

A run with a ``thread_id`` is checkpointed in SQLite under the team's state dir
(``<state_dir>/checkpoints.sqlite``), so :meth:`Team.resume` continues a killed run without redoing the
subtasks that finished. With ``planner.approve: true`` a run pauses after each plan: pass ``approve=`` (a
callback that sees the plan and returns an :class:`~tessera.types.Approval`) to decide in-process, or let
the run return ``status="awaiting_approval"`` and call :meth:`Team.resume` with the approval later.
"""

from __future__ import annotations

import inspect
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langgraph.types import Command, StreamMode

from tessera._async import iterate_sync, run_sync
from tessera.agents.planner import validate_plan
from tessera.config import TeamConfig, load_team
from tessera.errors import UserError
from tessera.events import Done, Event
from tessera.graphs.build import checkpoint_serde, graph_builder, sqlite_checkpointer
from tessera.graphs.context import RunContext, default_output_dir
from tessera.graphs.state import TeamState, fresh_state, next_history
from tessera.models.pool import ModelPool
from tessera.tracing.otel import export_run
from tessera.types import (
    MAX_TASK_CHARS,
    Approval,
    Plan,
    RunResult,
    RunStatus,
    SubtaskResult,
    Timings,
    Trace,
    union_length,
)

if TYPE_CHECKING:
    from langgraph.graph import StateGraph
    from langgraph.graph.state import CompiledStateGraph

__all__ = ["ApproveFn", "Team", "check_task"]

_MODES: list[StreamMode] = ["custom", "values"]

ApproveFn = Callable[[Plan], "Approval | Awaitable[Approval]"]
"""Decides on a proposed plan: return ``Approval.accept()``, ``.edit(plan)`` or ``.reject(reason)``."""


class Team:
    """A team of specialist models, ready to run tasks.

    Args:
        config: the team config (see :meth:`from_yaml`).
        models: chat models (any ``BaseChatModel``, such as a ``FunctionModel``) that take the place of
            the config's ``models`` entries of the same name; the config still names every model.
        pool: the model pool to use; by default one sized by ``runtime.memory_budget_mb``.
    """

    def __init__(
        self,
        config: TeamConfig,
        *,
        models: Mapping[str, BaseChatModel] | None = None,
        pool: ModelPool | None = None,
    ) -> None:
        unknown = sorted(set(models or {}) - set(config.models))
        if unknown:
            known = ", ".join(sorted(config.models))
            raise UserError(f"unknown model {unknown[0]!r} in models= (the config names: {known})")
        if models and pool is not None:
            raise UserError("pass either models= or pool=, not both")
        self.config = config
        self.models: dict[str, BaseChatModel] = dict(models or {})
        """The chat models given as instances, by name (the rest are built from the config)."""
        self.pool = pool or ModelPool.from_team(config, self.models)
        self._graph: CompiledStateGraph[Any, RunContext] | None = None
        self._state_graph: StateGraph[Any, RunContext] | None = None
        self._memory: Any = None  # an InMemorySaver for approval runs without a thread id
        self._memory_threads: set[str] = set()

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> Team:
        """Load a team from its YAML file."""
        return cls(load_team(path))

    def override(self, *, models: Mapping[str, BaseChatModel]) -> Team:
        """A new team on the same config with some models swapped, for a test or an experiment.

        The models given take the place of the config's entries of the same name (and of models this team
        was given). This team and its loaded models are left as they are.
        """
        return Team(self.config, models={**self.models, **models})

    @property
    def graph(self) -> CompiledStateGraph[Any, RunContext]:
        """The compiled LangGraph (no checkpointer): embeddable in a larger graph as a subgraph."""
        if self._graph is None:
            self._graph = self._builder.compile()
        return self._graph

    @property
    def _builder(self) -> StateGraph[Any, RunContext]:
        """The uncompiled graph, built once and compiled per checkpointer."""
        if self._state_graph is None:
            self._state_graph = graph_builder(self.config, self.pool)
        return self._state_graph

    @property
    def checkpoint_path(self) -> Path:
        """The SQLite file that holds the checkpoints of runs with a thread id."""
        return self.config.resolved_state_dir / "checkpoints.sqlite"

    # -- running ---------------------------------------------------------------------------------------

    async def astream(
        self, task: str, thread_id: str | None = None, *, approve: ApproveFn | None = None
    ) -> AsyncIterator[Event]:
        """Run ``task``, yielding :mod:`tessera.events` as they happen; the last is ``Done``."""
        async for event in self._events(fresh_state(task), thread_id, approve, stream_tokens=True):
            yield event

    def stream(
        self, task: str, thread_id: str | None = None, *, approve: ApproveFn | None = None
    ) -> Iterator[Event]:
        """Synchronous :meth:`astream` (the run happens on a helper thread)."""
        return iterate_sync(lambda: self.astream(task, thread_id, approve=approve))

    async def arun(
        self, task: str, thread_id: str | None = None, *, approve: ApproveFn | None = None
    ) -> RunResult:
        """Plan ``task``, run its subtasks in parallel where the DAG allows, and answer.

        Raises :class:`~tessera.errors.UserError` for an empty or too long task (see :func:`check_task`).
        """
        return await _last_result(self._events(fresh_state(task), thread_id, approve, stream_tokens=False))

    def run(self, task: str, thread_id: str | None = None, *, approve: ApproveFn | None = None) -> RunResult:
        """Synchronous :meth:`arun`."""
        return run_sync(self.arun(task, thread_id, approve=approve))

    async def aresume_stream(
        self, thread_id: str, approval: Approval | None = None, *, approve: ApproveFn | None = None
    ) -> AsyncIterator[Event]:
        """Continue the run on ``thread_id``, yielding events (see :meth:`aresume`)."""
        async for event in self._events(None, thread_id, approve, stream_tokens=True, approval=approval):
            yield event

    def resume_stream(
        self, thread_id: str, approval: Approval | None = None, *, approve: ApproveFn | None = None
    ) -> Iterator[Event]:
        """Synchronous :meth:`aresume_stream`."""
        return iterate_sync(lambda: self.aresume_stream(thread_id, approval, approve=approve))

    async def aresume(
        self, thread_id: str, approval: Approval | None = None, *, approve: ApproveFn | None = None
    ) -> RunResult:
        """Continue the run on ``thread_id``: after a kill, or with the ``approval`` it waits for.

        Finished subtasks are not run again. A run that already ended returns its result unchanged.
        Raises :class:`~tessera.errors.UserError` for an unknown thread, an ``approval`` for a run that is
        not paused for one, or an edited plan that cannot run.
        """
        return await _last_result(
            self._events(None, thread_id, approve, stream_tokens=False, approval=approval)
        )

    def resume(
        self, thread_id: str, approval: Approval | None = None, *, approve: ApproveFn | None = None
    ) -> RunResult:
        """Synchronous :meth:`aresume`."""
        return run_sync(self.aresume(thread_id, approval, approve=approve))

    async def aget_run(self, thread_id: str) -> RunResult | None:
        """What the checkpoint of ``thread_id`` holds now (None for an unknown thread)."""
        async with self._checkpointed(thread_id) as graph:
            config: dict[str, Any] = {"configurable": {"thread_id": thread_id}}
            return await _snapshot_result(graph, config, thread_id)

    def get_run(self, thread_id: str) -> RunResult | None:
        """Synchronous :meth:`aget_run`."""
        return run_sync(self.aget_run(thread_id))

    def close(self) -> None:
        """Unload the team's models."""
        self.pool.close()

    # -- internals -------------------------------------------------------------------------------------

    @asynccontextmanager
    async def _checkpointed(
        self, thread_id: str | None
    ) -> AsyncIterator[CompiledStateGraph[Any, RunContext]]:
        """The graph compiled with the right checkpointer for ``thread_id``.

        SQLite for named threads; an in-memory saver for unnamed runs that may pause for approval (so they
        can be resumed from this process); none for other unnamed runs, which is the fastest.
        """
        if thread_id is None:
            yield self.graph
        elif thread_id in self._memory_threads:
            if self._memory is None:
                from langgraph.checkpoint.memory import InMemorySaver

                self._memory = InMemorySaver(serde=checkpoint_serde())
            yield self._builder.compile(checkpointer=self._memory)
        else:
            async with sqlite_checkpointer(self.checkpoint_path) as saver:
                yield self._builder.compile(checkpointer=saver)

    async def _events(
        self,
        start: TeamState | None,
        thread_id: str | None,
        approve: ApproveFn | None,
        *,
        stream_tokens: bool,
        approval: Approval | None = None,
    ) -> AsyncIterator[Event]:
        if start is not None:
            check_task(self.config, start["task"])
        named = thread_id is not None
        thread = thread_id or uuid.uuid4().hex[:12]
        ctx = RunContext(
            self.config.runtime.max_concurrency,
            stream_tokens=stream_tokens,
            output_dir=default_output_dir(self.config) / thread,
        )
        if not named and self.config.planner.approve:
            self._memory_threads.add(thread)
        config: dict[str, Any] = {
            "configurable": {"thread_id": thread},
            # every subtask of a plan is in flight at once (most just wait); the real limit is ctx.slots
            "max_concurrency": self.config.planner.max_subtasks * (self.config.planner.max_replans + 1) + 4,
            "recursion_limit": 25 + 4 * self.config.planner.max_replans,
        }
        async with self._checkpointed(thread if named or thread in self._memory_threads else None) as graph:
            payload: Any = start
            if start is not None and named:  # a new task on a thread sees the thread's earlier turns
                previous = await graph.aget_state(config)  # type: ignore[arg-type]
                payload = {**start, "history": next_history(previous.values or {})}
            if start is None:
                payload = await self._resume_payload(graph, config, thread, ctx, approval, approve)
                if isinstance(payload, RunResult):
                    yield Done(result=payload)
                    return
            while True:
                state: dict[str, Any] = {}
                stream = graph.astream(payload, config, context=ctx, stream_mode=_MODES)  # type: ignore[call-overload]
                async for mode, chunk in stream:
                    if mode == "values":
                        state = chunk
                    else:
                        yield chunk
                pending = state.get("__interrupt__")
                if not pending or approve is None:
                    break
                decision = await _ask(approve, pending[0].value["plan"], ctx)
                payload = Command(resume=self._checked(decision).model_dump(mode="json"))
            result = _result(state, thread, ctx)
            export_run(result)
            if result.status == "done" and self.config.memory.long_term:
                await _remember(self.config, state.get("task", ""), result)
            yield Done(result=result)

    async def _resume_payload(
        self,
        graph: CompiledStateGraph[Any, RunContext],
        config: dict[str, Any],
        thread: str,
        ctx: RunContext,
        approval: Approval | None,
        approve: ApproveFn | None,
    ) -> Command[Any] | RunResult | None:
        """What continues the run on ``thread``; a RunResult when there is nothing to continue."""
        snapshot = await graph.aget_state(config)  # type: ignore[arg-type]
        if not snapshot.values:
            where = "this process" if thread in self._memory_threads else str(self.checkpoint_path)
            raise UserError(f"no run with thread id {thread!r} in {where}")
        if approval is not None and not snapshot.interrupts:
            why = "has finished" if not snapshot.next else "stopped part way (resume it without a decision)"
            raise UserError(
                f"thread {thread!r} {why}: it has no plan waiting to be accepted, rejected or edited"
            )
        if snapshot.interrupts:
            if approval is None and approve is not None:
                approval = await _ask(approve, snapshot.interrupts[0].value["plan"], ctx)
            if approval is None:
                result = await _snapshot_result(graph, config, thread)
                assert result is not None
                return result
            return Command(resume=self._checked(approval).model_dump(mode="json"))
        if not snapshot.next:
            result = await _snapshot_result(graph, config, thread)
            assert result is not None
            result.notes.append(f"thread {thread!r} had finished ({result.status}): nothing to resume")
            return result
        for task in snapshot.tasks:  # subtasks that finished before the kill wake their dependents
            if isinstance(task.result, dict):
                for result in (task.result.get("results") or {}).values():
                    ctx.publish(result)
        return None

    def _checked(self, approval: Approval) -> Approval:
        if not isinstance(approval, Approval):
            raise UserError(f"approve must return an Approval, not {type(approval).__name__}")
        if approval.action == "edit":
            if approval.plan is None:
                raise UserError("Approval.edit needs a plan")
            problems = validate_plan(approval.plan, self.config.specialists, self.config.planner.max_subtasks)
            if problems:
                raise UserError("edited plan cannot run: " + "; ".join(problems))
        return approval


def check_task(config: TeamConfig, task: str) -> None:
    """Refuse a task that is empty, or longer than a plan can carry or the planner can read.

    Nothing is ever cut to fit: a task is taken whole, or refused with a :class:`UserError` that says why.
    The planner's reach is estimated at 4 bytes a token against its model's ``n_ctx`` (a task past that
    cannot fit with the planner's instructions; one that fits the estimate but not the model fails its
    planning with a note, uncut).
    """
    if not task.strip():
        raise UserError("task: empty; say what the team should do")
    advice = "put long text in a file and give its path, or ingest it (tessera ingest) and ask about it"
    if len(task) > MAX_TASK_CHARS:
        raise UserError(
            f"task: {len(task):,} characters, more than a task may have ({MAX_TASK_CHARS:,}): {advice}"
        )
    name = config.planner.model
    n_ctx = getattr(config.models.get(name), "n_ctx", None)
    tokens = len(task.encode("utf-8")) // 4
    if isinstance(n_ctx, int) and tokens > n_ctx:
        raise UserError(
            f"task: about {tokens:,} tokens, more than planner model {name!r} can read"
            f" (n_ctx {n_ctx:,}): {advice}"
        )


async def _ask(approve: ApproveFn, plan: dict[str, Any], ctx: RunContext) -> Approval:
    """The approver's decision on ``plan``; the wait is an ``approval`` span (a person's time)."""
    started = time.time()
    decision = approve(Plan.model_validate(plan))
    if inspect.isawaitable(decision):
        decision = await decision
    tracer = ctx.tracer
    tracer.record(
        "approval",
        started,
        time.time(),
        span_id=tracer.span_id("approval"),
        lane="approval",
        round=tracer.round,
    )
    return decision


async def _remember(config: TeamConfig, task: str, result: RunResult) -> None:
    """Store the finished task in long-term memory (its time is ``timings.remember_s``, after ``total_s``).

    A store held by an ingest drops the memory with a note; a memory that cannot work at all (its embedder
    does not load) makes the run ``partial``: the answer stands, but the team did not do all it should.
    """
    import asyncio

    from tessera.errors import TesseraError
    from tessera.memory._lock import StoreLockedError
    from tessera.memory.recall import remember_run

    started = time.perf_counter()
    try:
        await asyncio.to_thread(remember_run, config, task, result.answer, thread=result.thread_id or "")
    except StoreLockedError as exc:
        result.notes.append(f"not remembered: {exc}")
    except TesseraError as exc:
        result.notes.append(f"long-term memory failed, not remembered: {exc}")
        result.status = "partial"
    finally:
        result.timings.remember_s = time.perf_counter() - started


async def _last_result(events: AsyncIterator[Event]) -> RunResult:
    result: RunResult | None = None
    async for event in events:
        if isinstance(event, Done):
            result = event.result
    assert result is not None, "every run ends with a Done event"
    return result


async def _snapshot_result(
    graph: CompiledStateGraph[Any, RunContext], config: dict[str, Any], thread: str
) -> RunResult | None:
    snapshot = await graph.aget_state(config)  # type: ignore[arg-type]
    if not snapshot.values:
        return None
    state = dict(snapshot.values)
    results: dict[str, SubtaskResult] = dict(state.get("results") or {})
    for task in snapshot.tasks:
        if isinstance(task.result, dict):
            results.update(task.result.get("results") or {})
    state["results"] = results
    windows = [(r.started, r.ended) for r in results.values() if r.started and r.ended]
    total = state.get("planning_s", 0.0) + (
        max(e for _, e in windows) - min(s for s, _ in windows) if windows else 0.0
    )
    status: RunStatus | None = None
    if snapshot.interrupts:
        status = "awaiting_approval"
    elif snapshot.next:
        status = "interrupted"
    return _result(state, thread, None, status=status, total=total)


def _result(
    state: dict[str, Any],
    thread: str,
    ctx: RunContext | None,
    *,
    status: RunStatus | None = None,
    total: float = 0.0,
) -> RunResult:
    """The run's result from its final state; its timings come from the run's trace (one clock for all).

    Without a ``ctx`` (a result read back from a checkpoint) there is no trace: ``total`` is what the
    checkpoint tells, and no overhead is claimed.
    """
    plan = state.get("plan")
    results = state.get("results") or {}
    ordered = [results[s.id] for s in plan.subtasks if s.id in results] if plan else list(results.values())
    trace = ctx.tracer.finish() if ctx else None
    if status is None:
        if state.get("__interrupt__"):
            status = "awaiting_approval"
        elif state.get("rejected") is not None:
            status = "rejected"
        elif not state.get("answer"):
            status = "failed"
        else:
            status = "done"
    result = RunResult(
        answer=state.get("answer", ""),
        plan=plan,
        subtasks=ordered,
        replans=state.get("replans", 0),
        timings=Timings(
            total_s=trace.ended - trace.started if trace else total,
            planning_s=state.get("planning_s", 0.0),
            overhead_s=trace.overhead_s if trace else 0.0,
            recall_s=_seconds(trace, "recall"),
            approval_s=_seconds(trace, "approval"),
        ),
        thread_id=thread,
        status=status,
        notes=state.get("notes", []),
        trace=trace,
    )
    if result.status == "done" and (result.failure_summary() or state.get("memory_failed")):
        result.status = "partial"
    return result


def _seconds(trace: Trace | None, kind: str) -> float:
    """Seconds of the run covered by ``kind`` spans (parallel ones count once); 0 without a trace."""
    if trace is None:
        return 0.0
    return union_length([(s.start, s.end) for s in trace.spans if s.kind == kind], trace.started, trace.ended)
