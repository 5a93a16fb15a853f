"""Running one subtask: dependencies, a concurrency slot, the first route, events, early starts.

:class:`SubtaskRunner` runs subtasks for :class:`~tessera.graphs.nodes.TeamNodes`, which holds one (its
``subtasks``): the graph's ``run_subtask`` node and the streaming planner both start subtasks through it.
The router picks
the first tier; the attempts, timeouts, escalation and fallback are the
:class:`~tessera.graphs.executor.SubtaskExecutor`'s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tessera.agents.router import Router, SubtaskRecord, classify_difficulty
from tessera.errors import UserError
from tessera.events import SubtaskFinished, SubtaskStarted, Token
from tessera.graphs._tracing import traced_subtask
from tessera.graphs.context import EarlyStart, Relay, RunContext
from tessera.graphs.executor import SubtaskExecutor, token_cost
from tessera.mcp.client import mcp_tools
from tessera.types import Subtask, SubtaskResult, hand_over, references

if TYPE_CHECKING:
    from tessera.config import TeamConfig
    from tessera.models.pool import ModelPool

__all__ = ["SubtaskRunner"]

log = logging.getLogger(__name__)


def failure_reason(error: str, specialist: str, model: str | None, *, raised: str | None = None) -> str:
    """A failed subtask's reason as one line, never empty: an empty one names the specialist and model.

    ``raised`` is the exception type when the failure was an exception (``error`` is then its message).
    """
    line = " | ".join(part.strip() for part in error.splitlines() if part.strip())
    if line:
        return f"{raised}: {line}" if raised else line
    where = f"specialist {specialist!r}" + (f" on model {model!r}" if model else "")
    return f"{raised} with no message in {where}" if raised else f"{where} failed and gave no reason"


class SubtaskRunner:
    """Runs a team's subtasks (see the module docstring); ``TeamNodes.subtasks`` holds one."""

    def __init__(self, config: TeamConfig, pool: ModelPool, router: Router) -> None:
        self.config = config
        self.pool = pool
        self.router = router
        self.executor = SubtaskExecutor(config, pool, router)

    async def run(
        self, subtask: Subtask, known: dict[str, SubtaskResult], ctx: RunContext, emit: Any
    ) -> SubtaskResult:
        """Run ``subtask`` and tell its dependents; a failure of any kind is a failed result, never raised
        (so it never hangs the subtasks waiting on it)."""
        try:
            result = await self._run(subtask, known, ctx, emit)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a subtask's failure must never hang its dependents
            spec = self.config.specialists.get(subtask.specialist)
            model = spec.model if spec is not None else None
            result = SubtaskResult(
                id=subtask.id,
                specialist=subtask.specialist,
                model=model,
                status="failed",
                error=failure_reason(
                    str(exc),
                    subtask.specialist,
                    model,
                    raised=None if isinstance(exc, UserError) else type(exc).__name__,
                ),
            )
        emit(SubtaskFinished(result=result))  # before its dependents can start
        ctx.publish(result)
        return result

    def early_starter(self, ctx: RunContext, emit: Any) -> Callable[[Subtask], None]:
        """A callback for the streaming planner: start each subtask once its dependencies have started.

        A subtask waits while a dependency is not planned (or not started) yet, so a plan that will turn
        out to have a cycle or a dangling dependency never starts those subtasks.
        """
        waiting: list[Subtask] = []

        def startable(subtask: Subtask) -> bool:
            return all(dep in ctx.early and dep != subtask.id for dep in subtask.depends_on) and set(
                references(subtask.instruction)
            ) <= set(subtask.depends_on)

        def on_subtask(subtask: Subtask) -> None:
            if subtask.specialist not in self.config.specialists or subtask.id in ctx.early:
                return  # the plan's validation reports it
            self.preload(ctx, subtask.specialist)
            waiting.append(subtask)
            while ready := [w for w in waiting if startable(w)]:
                for sub in ready:
                    waiting.remove(sub)
                    relay = Relay(emit)
                    task = asyncio.create_task(self.run(sub, {}, ctx, relay), name=f"tessera-{sub.id}")
                    ctx.early[sub.id] = EarlyStart(sub, task, relay)

        return on_subtask

    def preload(self, ctx: RunContext, specialist: str) -> None:
        """Start loading a specialist's (first) model in the background, once per run."""
        if not self.config.runtime.preload:
            return
        spec = self.config.specialists.get(specialist)
        model = spec.model if spec is not None else None
        if spec is not None and model is None and self.router.routed(specialist):
            model = self.router.tiers[0]
        if model is None or model in ctx.preloaded:
            return
        ctx.preloaded.add(model)
        self.pool.preload([model])

    @traced_subtask
    async def _run(
        self, subtask: Subtask, known: dict[str, SubtaskResult], ctx: RunContext, emit: Any
    ) -> SubtaskResult:
        outputs: dict[str, str] = {}
        for dep in subtask.depends_on:
            upstream = known.get(dep) or await ctx.finished(dep)
            if upstream.status != "done":
                return SubtaskResult(
                    id=subtask.id,
                    specialist=subtask.specialist,
                    status="skipped",
                    error=f"dependency {dep!r} {upstream.status}",
                )
            outputs[dep] = upstream.output
        instruction = hand_over(subtask.instruction, outputs)
        router = self.router
        routed = router.routed(subtask.specialist)
        score = await self._difficulty(instruction) if routed else None
        route = router.choose(subtask.specialist, instruction, len(subtask.depends_on), score)
        model_name = route.model or self.config.specialists[subtask.specialist].model
        async with ctx.slots, mcp_tools(self.config, subtask.specialist) as mcp:  # started per subtask
            started = time.time()
            emit(
                SubtaskStarted(
                    id=subtask.id, specialist=subtask.specialist, model=model_name, started=started
                )
            )
            on_token = (lambda text: emit(Token(id=subtask.id, text=text))) if ctx.stream_tokens else None
            outcome = await self.executor.run(
                subtask.specialist, instruction, route, ctx, on_token=on_token, tools=list(mcp)
            )
            ended = time.time()
        run, model_name = outcome.run, outcome.model
        if routed and router.history is not None and model_name is not None:
            record = SubtaskRecord(
                subtask.specialist,
                route.model,
                model_name,
                len(outcome.escalations),
                run.error is None,
                round(outcome.cost, 6),
                token_cost(self.config, router.tiers[-1], outcome.tokens),
            )
            await asyncio.to_thread(router.history.record_subtask, record)
        return SubtaskResult(
            id=subtask.id,
            specialist=subtask.specialist,
            model=model_name,
            tier=model_name if routed else None,
            route=route.reason if routed else None,
            escalations=outcome.escalations,
            cost=round(outcome.cost, 6),
            status="done" if run.error is None else "failed",
            output=run.output,
            attempts=run.attempts,
            started=started,
            ended=ended,
            error=None if run.error is None else failure_reason(run.error, subtask.specialist, model_name),
            tokens=outcome.tokens,
            busy_s=ctx.tracer.busy_s(ctx.tracer.span_id("subtask", subtask.id)),
            artifacts=run.artifacts,
            endpoint=outcome.endpoint,
        )

    async def _difficulty(self, instruction: str) -> float | None:
        """The classifier prompt's difficulty (``routing.difficulty: classifier``); None otherwise."""
        if self.config.routing.difficulty != "classifier":
            return None
        try:
            return await classify_difficulty(self.pool.get(self.router.tiers[0]), instruction)
        except Exception as exc:  # noqa: BLE001 - the cheap estimate stands in for a broken classifier
            log.warning("difficulty classifier failed (%s); using the built-in estimate", exc)
            return None


def _difficulty_fn(config: TeamConfig) -> Any:
    target = config.routing.difficulty
    if target is None or target == "classifier":
        return None
    from tessera._imports import import_object

    return import_object(target, where="routing.difficulty")
