"""The nodes of the orchestration graph: plan, approve, run_subtask, join, answer, and the routing between.

Every subtask of a plan is sent (LangGraph ``Send``) at once; each one waits for its own dependencies
through the run's :class:`RunContext`, then for a slot of ``runtime.max_concurrency``. So a subtask starts
the moment its last dependency ends, not when its whole "level" does, and each finished subtask is written
to the checkpoint as it completes.

Nodes emit :mod:`tessera.events` on LangGraph's custom stream (``stream_mode="custom"``), so a graph that
embeds this one as a subgraph sees them too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.types import Send, interrupt
from pydantic import BaseModel, Field

from tessera.agents.base import SpecialistContext
from tessera.agents.checks import schema_problem, verify
from tessera.agents.kinds import check_specialists, execute, specialist_class
from tessera.agents.planner import make_plan, validate_plan
from tessera.agents.router import Router, RoutingHistory, SubtaskRecord, classify_difficulty
from tessera.agents.specialist import stream_reply
from tessera.events import AnswerToken, PlanReady, Replan, SubtaskFinished, SubtaskStarted, Token
from tessera.graphs._tracing import traced_step, traced_subtask
from tessera.graphs.state import TeamState, conversation
from tessera.models.base import collect_endpoints
from tessera.tools.base import ToolEnv, resolve_tool
from tessera.trace import Tracer
from tessera.types import Approval, Plan, Subtask, SubtaskResult, fill_references, references, union_length

if TYPE_CHECKING:
    from tessera.config import TeamConfig
    from tessera.models.pool import ModelPool

__all__ = ["ANSWER_PROMPT", "JoinDecision", "RunContext", "TeamNodes", "run_context"]

log = logging.getLogger(__name__)

ANSWER_PROMPT = (
    "You write the final answer to the user's task from the results of the subtasks below. "
    "Answer directly; do not describe the process."
)


class JoinDecision(BaseModel):
    """The join step's verdict on a finished round of subtasks."""

    done: bool
    reason: str = Field("", max_length=300)


@dataclass
class RunContext:
    """Per-run coordination that is not state: dependency signals, the concurrency limit, call spans.

    Args:
        max_concurrency: subtasks running at once (the rest wait for a slot).
        stream_tokens: stream model output as ``token`` / ``answer_token`` events.
        output_dir: where this run's tools write files.
    """

    max_concurrency: int
    stream_tokens: bool = False
    output_dir: Path | None = None
    """Where this run's tools write files (default: ``<state_dir>/outputs``)."""
    spans: list[tuple[float, float]] = field(default_factory=list)
    tracer: Tracer = field(default_factory=Tracer)
    """The run's spans for its :class:`~tessera.types.Trace` (see :mod:`tessera.trace`)."""
    early: dict[str, tuple[Subtask, asyncio.Task[SubtaskResult]]] = field(default_factory=dict)
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
            self._slots = asyncio.Semaphore(self.max_concurrency)
        return self._slots


def run_context(config: RunnableConfig | None, team: TeamConfig) -> RunContext:
    """The run's context from the graph config (one is made if the caller did not pass one)."""
    configurable = (config or {}).setdefault("configurable", {})
    ctx = configurable.get("tessera_run")
    if ctx is None:
        ctx = configurable["tessera_run"] = RunContext(team.runtime.max_concurrency)
    assert isinstance(ctx, RunContext)
    return ctx


class TeamNodes:
    """The graph's nodes, bound to one team's config and model pool. Usable to build custom graphs.

    ``plan`` and ``approve`` produce the plan, ``dispatch`` (a conditional edge) sends every subtask to
    ``run_subtask``, ``join`` decides done or replan (``after_join`` routes), and ``answer`` writes the
    final answer.
    """

    def __init__(self, config: TeamConfig, pool: ModelPool) -> None:
        self.config = config
        self.pool = pool
        check_specialists(config)
        tiers = config.routing.tiers
        history = RoutingHistory(config.resolved_state_dir / "routing.sqlite") if tiers else None
        self.router = Router(config, history, difficulty=_difficulty_fn(config))

    @traced_step("planning")
    async def plan(self, state: TeamState, config: RunnableConfig) -> dict[str, Any]:
        """Ask the planner for a DAG (with one repair, then a fallback)."""
        ctx = run_context(config, self.config)
        planner = self.config.planner
        context = _previous_results(state) if state.get("replans") else None
        if state.get("replan_reason"):
            context = f"{context}\n\nReplan because: {state['replan_reason']}"
        memories = await self._recall(state) if not state.get("replans") else []
        earlier = [
            conversation(state.get("history") or []),
            "Relevant memories from earlier tasks:\n" + "\n".join(f"- {m}" for m in memories)
            if memories
            else "",
        ]
        context = "\n\n".join(part for part in [*earlier, context or ""] if part) or None
        streamed = planner.stream and not planner.approve and not state.get("replans")
        started = time.monotonic()
        try:
            outcome = await make_plan(
                self.pool.get(planner.model),
                state["task"],
                self.config.specialists,
                max_subtasks=planner.max_subtasks,
                system_prompt=planner.system_prompt,
                context=context,
                on_subtask=self._early_starter(ctx, get_stream_writer()) if streamed else None,
            )
        except BaseException:
            _keep_early(ctx, None)
            raise
        _keep_early(ctx, outcome.plan)
        for subtask in outcome.plan.subtasks:
            self._preload(ctx, subtask.specialist)
        ended = time.monotonic()
        ctx.spans.append((started, ended))
        notes = [f"plan rejected: {p}" for p in outcome.problems]
        if memories:
            notes.append(f"recalled {len(memories)} memories")
        if outcome.fallback:
            notes.append("planner failed twice; fell back to a single subtask")
        get_stream_writer()(
            PlanReady(plan=outcome.plan, replans=state.get("replans", 0), fallback=outcome.fallback)
        )
        return {
            "plan": outcome.plan,
            "notes": notes,
            "planning_s": state.get("planning_s", 0.0) + ended - started,
        }

    async def _recall(self, state: TeamState) -> list[str]:
        if not self.config.memory.long_term or not self.config.memory.recall_k:
            return []
        from tessera.memory.recall import recall_context

        found = await asyncio.to_thread(recall_context, self.config, state["task"])
        return [m.text for m in found]

    def approve(self, state: TeamState) -> dict[str, Any]:
        """Pause (LangGraph ``interrupt``) until the user accepts, edits or rejects the plan."""
        plan = state.get("plan")
        assert plan is not None, "approve runs after plan"
        reply = interrupt({"task": state["task"], "plan": plan.model_dump(mode="json")})
        approval = Approval.model_validate(reply)
        if approval.action == "accept":
            return {}
        if approval.action == "reject":
            reason = approval.reason or "no reason given"
            return {"rejected": reason, "notes": [f"plan rejected by the user: {reason}"]}
        edited = approval.plan
        problems = (
            validate_plan(edited, self.config.specialists, self.config.planner.max_subtasks)
            if edited
            else ["no plan"]
        )
        if problems:
            return {"rejected": "invalid edit", "notes": [f"edited plan rejected: {p}" for p in problems]}
        return {"plan": edited, "notes": ["plan edited by the user"]}

    def dispatch(self, state: TeamState) -> list[Send] | str:
        """Send every subtask that has no successful result yet; go to join when there are none."""
        if state.get("rejected") is not None:
            return "__end__"
        plan = state.get("plan")
        results = state.get("results") or {}
        if plan is None:
            return "join"
        done = {i: r for i, r in results.items() if r.status == "done"}
        pending = [s for s in plan.subtasks if s.id not in done]
        if not pending:
            return "join"
        return [Send("run_subtask", {"subtask": s, "known": done}) for s in pending]

    async def run_subtask(self, payload: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        """Wait for dependencies, then for a slot, then run the subtask on its specialist."""
        ctx = run_context(config, self.config)
        subtask: Subtask = payload["subtask"]
        known: dict[str, SubtaskResult] = payload.get("known", {})
        emit = get_stream_writer()
        early = ctx.early.pop(subtask.id, None)
        if early is not None and early[0] == subtask:  # started while the plan streamed
            result = await early[1]
        else:
            result = await self._guarded(subtask, known, ctx, emit)
        return {"results": {subtask.id: result}}

    async def _guarded(
        self, subtask: Subtask, known: dict[str, SubtaskResult], ctx: RunContext, emit: Any
    ) -> SubtaskResult:
        try:
            result = await self._run(subtask, known, ctx, emit)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a subtask's failure must never hang its dependents
            result = SubtaskResult(
                id=subtask.id, specialist=subtask.specialist, status="failed", error=str(exc)
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
                    task = asyncio.create_task(self._guarded(sub, {}, ctx, emit), name=f"tessera-{sub.id}")
                    ctx.early[sub.id] = (sub, task)

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
        instruction = fill_references(subtask.instruction, outputs)
        router = self.router
        routed = router.routed(subtask.specialist)
        score = await self._difficulty(instruction) if routed else None
        route = router.choose(subtask.specialist, instruction, len(subtask.depends_on), score)
        tier, model_name = route.tier, route.model or spec.model
        escalations: list[str] = []
        tried: list[str] = []
        cost, tokens = 0.0, 0
        scratch: dict[str, Any] = {}  # context built on one tier (retrieved sources) is reused on the next
        async with ctx.slots:
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
            error=run.error,
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

    @traced_step("join")
    async def join(self, state: TeamState, config: RunnableConfig) -> dict[str, Any]:
        """Done when every subtask succeeded; otherwise the planner decides, within ``max_replans``."""
        results = state.get("results") or {}
        plan = state.get("plan")
        ids = [s.id for s in plan.subtasks] if plan else []
        failed = [i for i in ids if results.get(i) is None or results[i].status != "done"]
        replans = state.get("replans", 0)
        if not failed or replans >= self.config.planner.max_replans:
            return {"replan_reason": None}
        ctx = run_context(config, self.config)
        summary = _previous_results(state)
        started = time.monotonic()
        judge = self.pool.get(self.config.planner.model).with_structured_output(JoinDecision)
        messages = [
            SystemMessage(content="Decide whether the task is done, or needs a new plan. Say why."),
            HumanMessage(content=f"Task: {state['task']}\n\n{summary}"),
        ]
        try:
            decision = JoinDecision.model_validate(await judge.ainvoke(messages))
        except Exception as exc:  # noqa: BLE001 - a broken join ends the run with what it has
            return {"replan_reason": None, "notes": [f"join failed: {exc}"]}
        finally:
            ctx.spans.append((started, time.monotonic()))
        if decision.done:
            return {"replan_reason": None}
        reason = decision.reason or "subtasks failed"
        get_stream_writer()(Replan(reason=reason, replans=replans + 1))
        return {"replans": replans + 1, "replan_reason": reason}

    def after_join(self, state: TeamState) -> str:
        """Back to ``plan`` when the join step asked for a replan, else on to ``answer``."""
        return "plan" if state.get("replan_reason") else "answer"

    @traced_step("answer")
    async def answer(self, state: TeamState, config: RunnableConfig) -> dict[str, Any]:
        """Compose the final answer from the results (one successful subtask's output stands as is)."""
        plan = state.get("plan")
        results = state.get("results") or {}
        ordered = [results[s.id] for s in plan.subtasks if s.id in results] if plan else []
        done = [r for r in ordered if r.status == "done"]
        emit = get_stream_writer()
        if not done:
            return {"answer": ""}
        if len(ordered) == 1:
            emit(AnswerToken(text=done[0].output))
            return {"answer": done[0].output}
        ctx = run_context(config, self.config)
        settings = self.config.answer
        model = self.pool.get(settings.model or self.config.planner.model)
        messages = [
            SystemMessage(content=settings.system_prompt or ANSWER_PROMPT),
            HumanMessage(content=_answer_prompt(state)),
        ]
        started = time.monotonic()
        try:
            if ctx.stream_tokens:
                reply = await stream_reply(model, messages, lambda text: emit(AnswerToken(text=text)))
            else:
                reply = await model.ainvoke(messages)
                emit(AnswerToken(text=str(reply.content)))
        except Exception as exc:  # noqa: BLE001 - the results stay in the RunResult; the run fails cleanly
            return {"answer": "", "notes": [f"answer failed: {type(exc).__name__}: {exc}"]}
        finally:
            ctx.spans.append((started, time.monotonic()))
        return {"answer": str(reply.content)}


def _keep_early(ctx: RunContext, plan: Plan | None) -> None:
    """Cancel early-started subtasks that the final plan does not have exactly as they were started."""
    final = {s.id: s for s in plan.subtasks} if plan is not None else {}
    for subtask_id, (subtask, task) in list(ctx.early.items()):
        if final.get(subtask_id) != subtask:
            task.cancel()
            del ctx.early[subtask_id]


def _difficulty_fn(config: TeamConfig) -> Any:
    target = config.routing.difficulty
    if target is None or target == "classifier":
        return None
    from tessera.models.function import import_object

    return import_object(target, where="routing.difficulty")


def _cost(config: TeamConfig, model: str | None, tokens: int) -> float:
    """Relative cost of ``tokens`` on ``model`` (its ``cost`` per 1k tokens)."""
    if model is None or model not in config.models:
        return 0.0
    return round(config.models[model].cost * max(tokens, 1) / 1000, 6)


def default_output_dir(config: TeamConfig) -> Path:
    """Where tools write files when the run does not say: ``tools.tts.output_dir`` or the state dir."""
    return config.tools.tts.output_dir or config.resolved_state_dir / "outputs"


def _answer_prompt(state: TeamState) -> str:
    earlier = conversation(state.get("history") or [])
    task = f"Task: {state['task']}\n\n{_previous_results(state)}"
    return f"{earlier}\n\n{task}" if earlier else task


def _previous_results(state: TeamState) -> str:
    results = state.get("results") or {}
    lines = ["Results so far:"]
    for result in results.values():
        body = result.output if result.status == "done" else f"({result.status}: {result.error})"
        lines.append(f"[{result.id} / {result.specialist}] {body[:2000]}")
    return "\n".join(lines)
