"""Running one subtask: dependencies, a concurrency slot, routing and escalation, checks, early starts.

:class:`SubtaskRunner` is the half of :class:`~tessera.graphs.nodes.TeamNodes` that runs subtasks: the
graph's ``run_subtask`` node and the streaming planner both start subtasks through it. A routed subtask
starts on the tier the router chooses and climbs one tier per failure (an exception, a timeout, failed
code tests, an empty answer, output that breaks its schema, a verifier saying no), at most
``routing.max_escalations`` times; a remote tier that does not answer falls back to the best local one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tessera.agents.base import SpecialistContext
from tessera.agents.checks import schema_problem, verify
from tessera.agents.kinds import execute, specialist_class
from tessera.agents.router import Router, SubtaskRecord, classify_difficulty
from tessera.errors import UserError
from tessera.events import SubtaskFinished, SubtaskStarted, Token
from tessera.graphs._tracing import traced_subtask
from tessera.graphs.context import EarlyStart, Relay, RunContext, default_output_dir
from tessera.mcp.client import mcp_tools
from tessera.models.base import collect_endpoints
from tessera.tools.base import ToolEnv, resolve_tool
from tessera.types import Subtask, SubtaskResult, hand_over, references, union_length

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
    """Runs subtasks for a team (see the module docstring); mixed into ``TeamNodes``."""

    config: TeamConfig
    pool: ModelPool
    router: Router

    async def _guarded(
        self, subtask: Subtask, known: dict[str, SubtaskResult], ctx: RunContext, emit: Any
    ) -> SubtaskResult:
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

    def _early_starter(self, ctx: RunContext, emit: Any) -> Callable[[Subtask], None]:
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
            self._preload(ctx, subtask.specialist)
            waiting.append(subtask)
            while ready := [w for w in waiting if startable(w)]:
                for sub in ready:
                    waiting.remove(sub)
                    relay = Relay(emit)
                    task = asyncio.create_task(self._guarded(sub, {}, ctx, relay), name=f"tessera-{sub.id}")
                    ctx.early[sub.id] = EarlyStart(sub, task, relay)

        return on_subtask

    def _preload(self, ctx: RunContext, specialist: str) -> None:
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
        spec = self.config.specialists[subtask.specialist]
        instruction = hand_over(subtask.instruction, outputs)
        router = self.router
        routed = router.routed(subtask.specialist)
        score = await self._difficulty(instruction) if routed else None
        route = router.choose(subtask.specialist, instruction, len(subtask.depends_on), score)
        tier, model_name = route.tier, route.model or spec.model
        escalations: list[str] = []
        tried: list[str] = []
        cost, tokens = 0.0, 0
        scratch: dict[str, Any] = {}  # context built on one tier (retrieved sources) is reused on the next
        async with ctx.slots, mcp_tools(self.config, subtask.specialist) as mcp:  # started per subtask
            started = time.time()
            emit(
                SubtaskStarted(
                    id=subtask.id, specialist=subtask.specialist, model=model_name, started=started
                )
            )
            on_token = (lambda text: emit(Token(id=subtask.id, text=text))) if ctx.stream_tokens else None
            cls = specialist_class(spec.kind, where=f"specialists.{subtask.specialist}.kind")
            while True:
                specialist = self._context(subtask.specialist, ctx, on_token, model_name)
                specialist.scratch = scratch
                specialist.tools.extend(mcp)
                served = collect_endpoints()
                run = await execute(cls, specialist, instruction)
                endpoint = served[-1] if served else None  # before the checks call other models
                if run.error is None:
                    run.error = await self._check(subtask.specialist, instruction, run.output)
                ctx.spans.extend(run.spans)
                cost += _cost(self.config, model_name, run.tokens)
                tokens += run.tokens
                if not routed or model_name is None:
                    break
                await asyncio.to_thread(router.record, subtask.specialist, model_name, run.error is None)
                tried.append(model_name)
                if run.error is None:
                    break
                if router.unreachable(model_name, run.error):  # the endpoint, not the task: fall back local
                    router.mark_down(model_name)
                    fallback = router.fallback(tried)
                    if fallback is None:
                        break
                    escalations.append(f"{model_name} -> {fallback}: down ({run.error})")
                    tier, model_name = router.tiers.index(fallback), fallback
                    continue
                higher = [i for i in range(tier + 1, len(router.tiers)) if router.up(router.tiers[i])]
                if not higher or len(escalations) >= self.config.routing.max_escalations:
                    break
                tier = higher[0]
                escalations.append(f"{model_name} -> {router.tiers[tier]}: {run.error}")
                model_name = router.tiers[tier]
            ended = time.time()
        if routed and router.history is not None and model_name is not None:
            record = SubtaskRecord(
                subtask.specialist,
                route.model,
                model_name,
                len(escalations),
                run.error is None,
                round(cost, 6),
                _cost(self.config, router.tiers[-1], tokens),
            )
            await asyncio.to_thread(router.history.record_subtask, record)
        return SubtaskResult(
            id=subtask.id,
            specialist=subtask.specialist,
            model=model_name,
            tier=model_name if routed else None,
            route=route.reason if routed else None,
            escalations=escalations,
            cost=round(cost, 6),
            status="done" if run.error is None else "failed",
            output=run.output,
            attempts=run.attempts,
            started=started,
            ended=ended,
            error=None if run.error is None else failure_reason(run.error, subtask.specialist, model_name),
            tokens=tokens,
            busy_s=union_length(run.spans),
            artifacts=run.artifacts,
            endpoint=endpoint,
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

    async def _check(self, name: str, instruction: str, output: str) -> str | None:
        """Why a finished attempt's output fails its checks (schema, verifier), or None."""
        spec = self.config.specialists[name]
        if spec.output_schema is not None:
            problem = schema_problem(spec.output_schema, output)
            if problem is not None:
                return problem
        if spec.verifier is None:
            return None
        judge = self.config.specialists[spec.verifier].model or self.router.tiers[-1]
        try:
            verdict = await verify(self.pool.get(judge), instruction, output)
        except Exception as exc:  # noqa: BLE001 - an unchecked output is not a wrong one
            log.warning("verifier %s failed on %s: %s", spec.verifier, name, exc)
            return None
        return None if verdict.ok else f"verifier {spec.verifier} said no: {verdict.reason or 'no reason'}"

    def _context(
        self, name: str, ctx: RunContext, on_token: Any, model: str | None = None
    ) -> SpecialistContext:
        spec = self.config.specialists[name]
        model = model or spec.model
        env = ToolEnv(self.config, ctx.output_dir or default_output_dir(self.config))
        return SpecialistContext(
            name=name,
            spec=spec,
            team=self.config,
            model=self.pool.get(model) if model else None,
            tools=[resolve_tool(t, env, where=f"specialists.{name}.tools") for t in spec.tools],
            output_dir=env.output_dir,
            on_token=on_token,
        )


def _difficulty_fn(config: TeamConfig) -> Any:
    target = config.routing.difficulty
    if target is None or target == "classifier":
        return None
    from tessera._imports import import_object

    return import_object(target, where="routing.difficulty")


def _cost(config: TeamConfig, model: str | None, tokens: int) -> float:
    """Relative cost of ``tokens`` on ``model`` (its ``cost`` per 1k tokens)."""
    if model is None or model not in config.models:
        return 0.0
    return round(config.models[model].cost * max(tokens, 1) / 1000, 6)
