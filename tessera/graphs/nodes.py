"""The nodes of the orchestration graph: plan, approve, run_subtask, join, answer, and the routing between.

Every subtask of a plan is sent (LangGraph ``Send``) at once; each one waits for its own dependencies
through the run's :class:`RunContext`, then for a slot of ``runtime.max_concurrency``. So a subtask starts
the moment its last dependency ends, not when its whole "level" does, and each finished subtask is written
to the checkpoint as it completes.

The run's :class:`RunContext` reaches the nodes the LangGraph way, as ``runtime.context`` (the graph's
``context_schema``); subtasks run through the nodes' :class:`SubtaskRunner` (``subtasks``).

Nodes emit :mod:`tessera.events` on LangGraph's custom stream (``stream_mode="custom"``), so a graph that
embeds this one as a subgraph sees them too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime
from langgraph.types import Send, interrupt
from pydantic import BaseModel, Field

from tessera.agents.kinds import check_specialists
from tessera.agents.planner import make_plan, validate_plan
from tessera.agents.router import Router, RoutingHistory
from tessera.agents.specialist import stream_reply
from tessera.errors import TesseraError
from tessera.events import AnswerToken, PlanReady, Replan
from tessera.graphs._subtasks import SubtaskRunner, _difficulty_fn
from tessera.graphs._tracing import traced_step
from tessera.graphs.context import RunContext, keep_early, run_context
from tessera.graphs.state import TeamState, conversation
from tessera.tracing import record_span
from tessera.types import Approval, Subtask, SubtaskResult

if TYPE_CHECKING:
    from tessera.config import TeamConfig
    from tessera.models.pool import ModelPool

__all__ = ["ANSWER_PROMPT", "JoinDecision", "TeamNodes"]

log = logging.getLogger(__name__)

ANSWER_PROMPT = (
    "You write the final answer to the user's task from the results of the subtasks below. Cover every "
    "part of the task, in order. State each result as the subtask gave it: copy numbers, names and file "
    "paths exactly, and never recompute or replace a result from your own knowledge. If a part failed or "
    "has no result, say that it could not be done. Answer directly; do not describe the process."
)


class JoinDecision(BaseModel):
    """The join step's verdict on a finished round of subtasks."""

    done: bool
    reason: str = Field("", max_length=300)


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
        self.router = Router(config, history, difficulty=_difficulty_fn(config), local=pool.is_local)
        self.subtasks = SubtaskRunner(config, pool, self.router)
        """Runs the subtasks: dependencies, slots, the first route, the executor, events, early starts."""

    @traced_step("planning")
    async def plan(self, state: TeamState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Ask the planner for a DAG (with one repair, then a fallback)."""
        ctx = run_context(runtime, self.config)
        planner = self.config.planner
        context = _previous_results(state) if state.get("replans") else None
        if state.get("replan_reason"):
            context = f"{context}\n\nReplan because: {state['replan_reason']}"
        memories, recall_failed = await self._recall(state) if not state.get("replans") else ([], None)
        earlier = [
            conversation(state.get("history") or []),
            "Relevant memories from earlier tasks:\n" + "\n".join(f"- {m}" for m in memories)
            if memories
            else "",
        ]
        context = "\n\n".join(part for part in [*earlier, context or ""] if part) or None
        streamed = planner.stream and not planner.approve and not state.get("replans")
        started = time.time()
        try:
            outcome = await make_plan(
                self.pool.get(planner.model),
                state["task"],
                self.config.specialists,
                max_subtasks=planner.max_subtasks,
                system_prompt=planner.system_prompt,
                context=context,
                on_subtask=self.subtasks.early_starter(ctx, get_stream_writer()) if streamed else None,
                examples=planner.examples,
                fast_path=planner.fast_path and not state.get("history") and not state.get("replans"),
            )
        except BaseException:
            keep_early(ctx, None)
            raise
        keep_early(ctx, outcome.plan)
        for subtask in outcome.plan.subtasks:
            self.subtasks.preload(ctx, subtask.specialist)
        record_span("call", started, time.time(), call="planner")
        notes = [f"plan rejected: {p}" for p in outcome.problems]
        if recall_failed:
            notes.append(f"long-term memory failed, nothing recalled: {recall_failed}")
        if memories:
            notes.append(f"recalled {len(memories)} {'memory' if len(memories) == 1 else 'memories'}")
        if outcome.fallback:
            notes.append("planner failed twice; fell back to a single subtask")
        if outcome.fast:
            notes.append(f"one-step task: the planner only chose {outcome.plan.subtasks[0].specialist}")
        get_stream_writer()(
            PlanReady(plan=outcome.plan, replans=state.get("replans", 0), fallback=outcome.fallback)
        )
        update: dict[str, Any] = {"plan": outcome.plan, "notes": notes}
        if recall_failed:
            update["memory_failed"] = True
        return update  # planning_s: set by traced_step from the span

    async def _recall(self, state: TeamState) -> tuple[list[str], str | None]:
        """Long-term memories for the planner's context, timed as a ``recall`` span of the planning, and
        why recall failed (its embedder did not load; the run goes on without memories)."""
        if not self.config.memory.long_term or not self.config.memory.recall_k:
            return [], None
        started = time.time()  # importing the memory modules is a part of recall's cost
        from tessera.memory.recall import recall_context

        try:
            found = await asyncio.to_thread(recall_context, self.config, state["task"])
        except TesseraError as exc:
            record_span("recall", started, time.time(), memories=0)
            return [], str(exc)
        record_span("recall", started, time.time(), memories=len(found))
        return [m.text for m in found], None

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

    async def run_subtask(self, payload: dict[str, Any], *, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Wait for dependencies, then for a slot, then run the subtask on its specialist."""
        ctx = run_context(runtime, self.config)
        subtask: Subtask = payload["subtask"]
        known: dict[str, SubtaskResult] = payload.get("known", {})
        emit = get_stream_writer()
        early = ctx.early.pop(subtask.id, None)
        if early is not None and early.subtask == subtask:  # started while the plan streamed
            early.relay.attach(emit)
            result = await early.task
        else:
            result = await self.subtasks.run(subtask, known, ctx, emit)
        return {"results": {subtask.id: result}}

    @traced_step("join")
    async def join(self, state: TeamState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
        """Done when every subtask succeeded; otherwise the planner decides, within ``max_replans``."""
        results = state.get("results") or {}
        plan = state.get("plan")
        ids = [s.id for s in plan.subtasks] if plan else []
        failed = [i for i in ids if results.get(i) is None or results[i].status != "done"]
        replans = state.get("replans", 0)
        if not failed or replans >= self.config.planner.max_replans:
            return {"replan_reason": None}
        summary = _previous_results(state)
        started = time.time()
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
            record_span("call", started, time.time(), call="join")
        if decision.done:
            return {"replan_reason": None}
        reason = decision.reason or "subtasks failed"
        get_stream_writer()(Replan(reason=reason, replans=replans + 1))
        return {"replans": replans + 1, "replan_reason": reason}

    def after_join(self, state: TeamState) -> str:
        """Back to ``plan`` when the join step asked for a replan, else on to ``answer``."""
        return "plan" if state.get("replan_reason") else "answer"

    @traced_step("answer")
    async def answer(self, state: TeamState, *, runtime: Runtime[RunContext]) -> dict[str, Any]:
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
        ctx = run_context(runtime, self.config)
        settings = self.config.answer
        model = self.pool.get(settings.model or self.config.planner.model)
        messages = [
            SystemMessage(content=settings.system_prompt or ANSWER_PROMPT),
            HumanMessage(content=_answer_prompt(state)),
        ]
        started = time.time()
        try:
            if ctx.stream_tokens:
                reply = await stream_reply(model, messages, lambda text: emit(AnswerToken(text=text)))
            else:
                reply = await model.ainvoke(messages)
                emit(AnswerToken(text=str(reply.content)))
        except Exception as exc:  # noqa: BLE001 - the results stay in the RunResult; the run fails cleanly
            return {"answer": "", "notes": [f"answer failed: {type(exc).__name__}: {exc}"]}
        finally:
            record_span("call", started, time.time(), call="answer")
        answer = str(reply.content)
        missing = _unquoted_results(answer, done)
        if missing:
            tail = "\n\n" + "\n".join(f"{r.id} ({r.specialist}): {r.output.strip()}" for r in missing)
            emit(AnswerToken(text=tail))
            answer += tail
        return {"answer": answer}


def _answer_prompt(state: TeamState) -> str:
    earlier = conversation(state.get("history") or [])
    task = f"Task: {state['task']}\n\n{_previous_results(state)}"
    return f"{earlier}\n\n{task}" if earlier else task


def _previous_results(state: TeamState) -> str:
    results = state.get("results") or {}
    plan = state.get("plan")
    lines = []
    if plan:  # what each part was asked, so that a result is read against its own part of the task
        lines = [
            "Subtasks:",
            *(f"- {s.id} ({s.specialist}): {s.instruction[:300]}" for s in plan.subtasks),
            "",
        ]
    lines.append("Results so far:")
    for result in results.values():
        body = result.output if result.status == "done" else f"({result.status}: {result.error})"
        lines.append(f"[{result.id} / {result.specialist}] {body[:2000]}")
    return "\n".join(lines)


_SHORT_RESULT = 40
_VALUE_WORDS = 6


def _unquoted_results(answer: str, done: list[SubtaskResult]) -> list[SubtaskResult]:
    """Value-like results (one short line with a number or a path) that the answer does not state.

    The answer model may drop a part of the task, or put its own memory in place of a computed value; a
    value it left out is appended, so the answer never loses what a subtask produced.
    """
    said = " ".join(answer.lower().split())
    return [
        r
        for r in done
        if len(value := r.output.strip()) <= _SHORT_RESULT
        and len(value.split()) <= _VALUE_WORDS
        and any(c.isdigit() or c == "/" for c in value)
        and " ".join(value.lower().split()) not in said
    ]
