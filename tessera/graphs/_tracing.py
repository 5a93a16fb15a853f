"""Decorators that trace the graph's nodes: one line on each node, the rest of the node untouched.

:func:`traced_step` times ``plan``, ``join`` and ``answer`` as ``planning``/``join``/``answer`` spans (and
sets the state's ``planning_s`` from the planning span, so the two never disagree), and
:func:`traced_subtask` times a subtask (``SubtaskRunner._run``) with its queue waits: for its dependencies,
then for a ``max_concurrency`` slot. Model and tool spans recorded inside land under these.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from tessera.graphs.context import run_context

if TYPE_CHECKING:
    from langgraph.runtime import Runtime

    from tessera.config import TeamConfig
    from tessera.types import SubtaskResult

__all__ = ["traced_step", "traced_subtask"]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def traced_step(kind: str) -> Callable[[F], F]:
    """Trace a ``TeamNodes`` node method ``(self, state, *, runtime)`` as one ``kind`` span."""

    def wrap(method: F) -> F:
        @functools.wraps(method)
        async def node(self: Any, state: Any, *, runtime: Runtime[Any]) -> Any:
            ctx = run_context(runtime, self.config)
            if runtime.context is not ctx:  # no run context passed: the method sees the one traced here
                runtime = runtime.override(context=ctx)
            tracer = ctx.tracer
            if kind == "planning":
                tracer.round = int(state.get("replans", 0))
            model = _step_model(self.config, kind)
            start = time.time()
            with tracer.scope(kind, lane=model, round=tracer.round, model=model, start=start) as extra:
                update = await method(self, state, runtime=runtime)
                if kind == "planning":  # the run's planning_s and this span: one clock, the same seconds
                    extra["end"] = end = time.time()
                    update["planning_s"] = state.get("planning_s", 0.0) + end - start
                return update

        return node  # type: ignore[return-value]

    return wrap


def traced_subtask(method: F) -> F:
    """Trace ``_run(self, subtask, known, ctx, ...) -> SubtaskResult`` as a ``subtask`` span.

    The span covers the subtask from dispatch to its end; inside it, ``queue`` spans show the wait for
    dependencies (``wait="deps"``) and for a concurrency slot (``wait="slot"``, until ``started``).
    """
    signature = inspect.signature(method)

    @functools.wraps(method)
    async def run(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        subtask, ctx = bound.arguments["subtask"], bound.arguments["ctx"]
        tracer = ctx.tracer
        round_ = tracer.round
        queued = time.time()
        with tracer.scope(
            "subtask",
            subtask.id,
            round=round_,
            specialist=subtask.specialist,
            depends_on=list(subtask.depends_on),
        ) as extra:
            result: SubtaskResult = await method(*args, **kwargs)
            extra.update(
                lane=result.model or _tool_lane(bound.arguments["self"].config, subtask.specialist),
                model=result.model,
                status=result.status,
                started=result.started,
                tokens=result.tokens or None,
            )
        deps = [tracer.find(tracer.span_id("subtask", d, round_)) for d in subtask.depends_on]
        ready = max([queued, *(d.end for d in deps if d is not None)])
        started = result.started or time.time()
        where = {"parent": tracer.span_id("subtask", subtask.id, round_), "subtask": subtask.id}
        if subtask.depends_on:
            tracer.record("queue", queued, min(ready, started), wait="deps", **where)
        if result.started is not None and started - ready > 1e-3:
            tracer.record("queue", ready, started, wait="slot", **where)
        return result

    return run  # type: ignore[return-value]


def _step_model(config: TeamConfig, kind: str) -> str:
    if kind == "answer" and config.answer.model:
        return config.answer.model
    return config.planner.model


def _tool_lane(config: TeamConfig, specialist: str) -> str:
    """The row of a subtask with no model: its tool agent's tool, else the specialist."""
    spec = config.specialists.get(specialist)
    return f"tool:{spec.tool}" if spec is not None and spec.tool else specialist
