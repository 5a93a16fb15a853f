"""The subtask executor: one home for a subtask's attempts, timeouts, escalation and fallback.

:func:`execute` runs one specialist on one model: ``max_attempts`` tries of ``timeout_s`` each, or, for a
kind that holds a repair conversation over its attempts (``manages_attempts``: general, coder), one
deadline of ``timeout_s * max_attempts``. :class:`SubtaskExecutor` runs a subtask over the router's tiers:
a failed attempt (an exception, a timeout, failed code tests, an empty answer, output that breaks its
schema, a verifier saying no) climbs one tier, at most ``routing.max_escalations`` times; a remote tier
whose endpoint fails (``Router.unreachable``: a :class:`~tessera.errors.ModelUnreachable` or a
:class:`~tessera.errors.SpecialistTimeout`, by type, like pydantic-ai's ``FallbackModel(fallback_on=...)``)
is marked down and the subtask falls back to the best local tier.

Failures are types: every failed attempt leaves a :class:`~tessera.errors.SpecialistError` (or the
exception it raised) in ``SpecialistRun.failure``; ``error`` is its one-line message for the user.
Retries that stay elsewhere are a model's own (see ``ARCHITECTURE.md``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tessera.agents.base import SpecialistContext, SpecialistRun, instantiate
from tessera.agents.checks import schema_problem, verify
from tessera.agents.kinds import specialist_class
from tessera.agents.router import Route, Router
from tessera.errors import SpecialistError, SpecialistTimeout, UserError
from tessera.graphs.context import RunContext, default_output_dir
from tessera.models.base import collect_endpoints
from tessera.tools.base import ToolEnv, resolve_tool
from tessera.tracing import record_span

if TYPE_CHECKING:
    from collections.abc import Callable

    from langchain_core.tools import BaseTool

    from tessera.config import TeamConfig
    from tessera.models.pool import ModelPool

__all__ = ["Outcome", "SubtaskExecutor", "execute", "token_cost"]

log = logging.getLogger(__name__)


async def execute(cls: type[Any], ctx: SpecialistContext, instruction: str) -> SpecialistRun:
    """Run one subtask on a specialist of class ``cls`` within its ``timeout_s`` and ``max_attempts``.

    Classes with ``manages_attempts = True`` (general, coder) loop over attempts themselves, each hearing
    why the last one failed, and get one overall deadline of ``timeout_s * max_attempts``. Others get
    ``max_attempts`` tries of ``timeout_s`` each; an exception, an ``error`` or an empty output is a
    failed try. A failed run always has a typed ``failure``.
    """
    spec = ctx.spec
    if getattr(cls, "manages_attempts", False):
        started = time.time()
        try:
            async with asyncio.timeout(spec.timeout_s * spec.max_attempts):
                run: SpecialistRun = await instantiate(cls, ctx).run(instruction)
        except TimeoutError:
            failure = SpecialistTimeout(f"timed out after {spec.timeout_s * spec.max_attempts:g}s")
            record_span("call", started, time.time(), call="attempt")
            return SpecialistRun(error=str(failure), failure=failure, attempts=spec.max_attempts)
        return _typed(run)
    run = SpecialistRun()
    for attempt in range(1, spec.max_attempts + 1):
        run.attempts = attempt
        started = time.time()
        try:
            async with asyncio.timeout(spec.timeout_s):
                one = await _call(cls, ctx, instruction)
        except TimeoutError:
            run.failure = SpecialistTimeout(f"timed out after {spec.timeout_s:g}s")
            run.error = str(run.failure)
            continue
        except Exception as exc:  # noqa: BLE001 - a failed try; the error is the subtask's
            run.error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, UserError) else str(exc)
            run.failure = exc
            continue
        finally:
            record_span("call", started, time.time(), call="attempt")
        if one.error is None and one.output.strip():
            one.attempts = attempt
            one.tokens += run.tokens
            return one
        run.error = one.error or "empty answer"
        run.failure = one.failure or SpecialistError(run.error)
        run.tokens += one.tokens
    return run


def _typed(run: SpecialistRun) -> SpecialistRun:
    """``run`` with a typed ``failure`` whenever it has an ``error``."""
    if run.error is not None and run.failure is None:
        run.failure = SpecialistError(run.error)
    return run


async def _call(cls: type[Any], ctx: SpecialistContext, instruction: str) -> SpecialistRun:
    specialist = instantiate(cls, ctx)
    if inspect.iscoroutinefunction(specialist.run):
        out = await specialist.run(instruction)
    else:
        out = await asyncio.to_thread(specialist.run, instruction)
        if inspect.isawaitable(out):
            out = await out
    return out if isinstance(out, SpecialistRun) else SpecialistRun(output=str(out))


@dataclass
class Outcome:
    """How a subtask went over every tier it ran on."""

    run: SpecialistRun
    """The last attempt's run (its ``failure`` is None when the subtask succeeded)."""
    model: str | None
    """The model it ended on."""
    escalations: list[str] = field(default_factory=list)
    cost: float = 0.0
    tokens: int = 0
    endpoint: str | None = None


class SubtaskExecutor:
    """Runs a subtask's attempts on a team's specialists and tiers (see the module docstring)."""

    def __init__(self, config: TeamConfig, pool: ModelPool, router: Router) -> None:
        self.config = config
        self.pool = pool
        self.router = router

    async def run(
        self,
        name: str,
        instruction: str,
        route: Route,
        ctx: RunContext,
        *,
        on_token: Callable[[str], None] | None = None,
        tools: list[BaseTool] | None = None,
    ) -> Outcome:
        """Run ``instruction`` on specialist ``name``, starting at ``route``, escalating and falling back."""
        spec = self.config.specialists[name]
        router = self.router
        routed = router.routed(name)
        tier, model_name = route.tier, route.model or spec.model
        outcome = Outcome(run=SpecialistRun(), model=model_name)
        tried: list[str] = []
        scratch: dict[str, Any] = {}  # context built on one tier (retrieved sources) is reused on the next
        cls = specialist_class(spec.kind, where=f"specialists.{name}.kind")
        while True:
            specialist = self._context(name, ctx, on_token, model_name)
            specialist.scratch = scratch
            specialist.tools.extend(tools or [])
            served = collect_endpoints()
            run = await execute(cls, specialist, instruction)
            outcome.endpoint = served[-1] if served else None  # before the checks call other models
            if run.error is None:
                run.error = await self._check(name, instruction, run.output)
                run.failure = None if run.error is None else SpecialistError(run.error)
            outcome.run, outcome.model = run, model_name
            outcome.cost += token_cost(self.config, model_name, run.tokens)
            outcome.tokens += run.tokens
            if not routed or model_name is None:
                return outcome
            await asyncio.to_thread(router.record, name, model_name, run.failure is None)
            tried.append(model_name)
            if run.failure is None:
                return outcome
            if router.unreachable(model_name, run.failure):  # the endpoint, not the task: fall back local
                router.mark_down(model_name)
                fallback = router.fallback(tried)
                if fallback is None:
                    return outcome
                outcome.escalations.append(f"{model_name} -> {fallback}: down ({run.error})")
                tier, model_name = router.tiers.index(fallback), fallback
                continue
            higher = [i for i in range(tier + 1, len(router.tiers)) if router.up(router.tiers[i])]
            if not higher or len(outcome.escalations) >= self.config.routing.max_escalations:
                return outcome
            tier = higher[0]
            outcome.escalations.append(f"{model_name} -> {router.tiers[tier]}: {run.error}")
            model_name = router.tiers[tier]

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
        self, name: str, ctx: RunContext, on_token: Callable[[str], None] | None, model: str | None = None
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


def token_cost(config: TeamConfig, model: str | None, tokens: int) -> float:
    """Relative cost of ``tokens`` on ``model`` (its ``cost`` per 1k tokens)."""
    if model is None or model not in config.models:
        return 0.0
    return round(config.models[model].cost * max(tokens, 1) / 1000, 6)
