"""Spans recorded by the real graph: planning, queue waits, subtasks, model calls, tools, handoffs, answer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tessera import FunctionModel, Team, TeamConfig
from tessera.tracing import WORK_KINDS
from tessera.types import Approval, Plan, RunResult, Span, Trace, union_length

from .. import fakes
from ..agents.test_custom import custom_team, task
from .conftest import plan_for, sub


def nap(messages: list[dict[str, Any]], **_: Any) -> str:
    """A worker that sleeps for the seconds its instruction starts with ("0.2 do this")."""
    text = messages[-1]["content"]
    time.sleep(float(text.split()[0]))
    return "did: " + text


def nap_team(max_concurrency: int = 8, *, approve: bool = False) -> Team:
    return Team(
        TeamConfig.from_dict(
            {
                "name": "naps",
                "models": {"planner": {"backend": "function"}, "worker": {"backend": "function"}},
                "planner": {"model": "planner", "approve": approve},
                "specialists": {"general": {"description": "does anything", "model": "worker"}},
                "runtime": {"max_concurrency": max_concurrency},
                "memory": {"long_term": False},
            }
        ),
        models={
            "planner": FunctionModel(fakes.planner, model_id="planner"),
            "worker": FunctionModel(nap, model_id="worker"),
        },
    )


def run_dag() -> RunResult:
    """a (0.3 s) and b (0.1 s) feed c (0.2 s); d (0.05 s) stands alone."""
    name = plan_for(
        "traced dag",
        sub("a", "0.3 first"),
        sub("b", "0.1 second"),
        sub("c", "0.2 join {{a}} {{b}}", ["a", "b"]),
        sub("d", "0.05 aside"),
    )
    return nap_team().run(name)


def kinds(trace: Trace, kind: str) -> list[Span]:
    return [s for s in trace.spans if s.kind == kind]


def test_every_phase_is_recorded_in_order_and_nested() -> None:
    result = run_dag()
    trace = result.trace
    assert result.status == "done" and trace is not None
    by_id = {s.id: s for s in trace.spans}
    [planning] = kinds(trace, "planning")
    [answer] = kinds(trace, "answer")
    subtasks = {s.name: s for s in kinds(trace, "subtask")}
    assert set(subtasks) == {"a", "b", "c", "d"}
    assert planning.lane == "planner" and answer.lane == "planner"
    assert all(s.lane == "worker" and s.attrs["status"] == "done" for s in subtasks.values())
    assert (
        trace.started <= planning.start <= planning.end <= min(s.attrs["started"] for s in subtasks.values())
    )
    assert max(s.end for s in subtasks.values()) <= answer.start <= answer.end <= trace.ended
    for sid, step in subtasks.items():  # each subtask's model call is one decode span inside it
        [decode] = [s for s in kinds(trace, "decode") if s.parent == step.id]
        assert step.attrs["started"] <= decode.start <= decode.end <= step.end, sid
        assert decode.lane == "worker" and decode.attrs["model"] == "worker"
    planner_calls = [by_id[s.parent or ""].kind for s in kinds(trace, "decode") if s.lane == "planner"]
    assert sorted(planner_calls) == ["answer", "planning"]
    c_decode = next(s for s in kinds(trace, "decode") if s.parent == subtasks["c"].id)
    assert c_decode.start >= subtasks["a"].end  # c's real work starts only after a ended
    [deps] = [s for s in kinds(trace, "queue") if s.attrs["wait"] == "deps"]
    assert deps.parent == subtasks["c"].id and deps.end >= subtasks["a"].end - 1e-3
    [handoff] = kinds(trace, "handoff")
    assert handoff.name == "c" and handoff.attrs["after"] == "a"
    assert handoff.start == subtasks["a"].end and handoff.end == c_decode.start
    assert trace.critical_path == ["planning@0", "subtask:a@0", "subtask:c@0", "answer@0"]
    assert 0 < trace.time_to_first_subtask_s < trace.ended - trace.started  # type: ignore[operator]


def test_timings_are_read_from_the_trace() -> None:
    """Issue 19, finding 3: one clock; RunResult.timings, the trace and its summary say the same numbers."""
    result = run_dag()
    trace, timings = result.trace, result.timings
    assert trace is not None
    [planning] = kinds(trace, "planning")
    assert timings.total_s == trace.ended - trace.started
    assert timings.overhead_s == trace.overhead_s
    assert abs(timings.planning_s - planning.seconds) < 1e-9
    work = [(s.start, s.end) for s in trace.spans if s.kind in WORK_KINDS]
    assert trace.overhead_s <= timings.total_s - union_length(work, trace.started, trace.ended) + 1e-9
    assert 0 < trace.overhead_s < 0.2 * timings.total_s  # 0.5 s of naps; the rest is the framework
    from tessera.tracing.view import summary

    assert f"planning {planning.seconds:.3f}s  overhead {timings.overhead_s:.3f}s" in summary(trace)


def test_time_spent_approving_a_plan_is_its_own_step_not_overhead() -> None:
    """Issue 19, finding 3: a person deciding on a plan is an ``approval`` step, not framework overhead."""
    name = plan_for("approved dag", sub("a", "0.05 first"), sub("b", "0.05 then {{a}}", ["a"]))

    def approve(plan: Plan) -> Approval:
        time.sleep(0.4)
        return Approval.accept()

    result = nap_team(approve=True).run(name, approve=approve)
    trace, timings = result.trace, result.timings
    assert result.status == "done" and trace is not None
    [wait] = kinds(trace, "approval")
    [planning] = kinds(trace, "planning")
    assert wait.seconds >= 0.4 and wait.start >= planning.end and wait.lane == "approval"
    assert timings.approval_s == pytest.approx(wait.seconds)
    assert timings.overhead_s < 0.15, timings
    assert trace.critical_path == ["planning@0", "approval@0", "subtask:a@0", "subtask:b@0", "answer@0"]


def test_queue_wait_shows_when_max_concurrency_is_one() -> None:
    name = plan_for("one at a time", sub("x", "0.1 x"), sub("y", "0.1 y"), sub("z", "0.1 z"))
    result = nap_team(max_concurrency=1).run(name)
    trace = result.trace
    assert result.status == "done" and trace is not None
    steps = {s.name: s for s in kinds(trace, "subtask")}
    waits = {s.name: s for s in kinds(trace, "queue") if s.attrs["wait"] == "slot"}
    assert len(waits) == 2 and not any(s.attrs["wait"] == "deps" for s in kinds(trace, "queue"))
    for sid, wait in waits.items():  # each waited until another subtask gave up the slot
        assert wait.parent == steps[sid].id and wait.end == steps[sid].attrs["started"]
        assert any(other.end <= wait.end + 1e-3 for name, other in steps.items() if name != sid)
    first = (set(steps) - set(waits)).pop()
    assert steps[first].attrs["started"] - steps[first].start < min(w.seconds for w in waits.values())


def test_tool_calls_and_tool_agents_record_tool_spans(tmp_path: Path) -> None:
    team = Team.from_yaml(custom_team(tmp_path))
    result = team.run(task(("a", "counter", "one two three"), ("e", "tool_agent", "four five")))
    trace = result.trace
    assert result.status == "done" and trace is not None
    tools = {s.parent: s for s in kinds(trace, "tool")}
    assert set(tools) == {"subtask:a@0", "subtask:e@0"}
    assert tools["subtask:a@0"].name == "word_count" and tools["subtask:a@0"].lane == "tool:word_count"
    step_e = next(s for s in kinds(trace, "subtask") if s.name == "e")
    assert step_e.lane == "tool:word_count"  # a tool agent's row is its tool
    calls = [s for s in kinds(trace, "decode") if s.parent == "subtask:a@0"]
    assert len(calls) == 2  # the model asks for the tool, then answers with its result
    assert calls[0].end <= tools["subtask:a@0"].start <= tools["subtask:a@0"].end <= calls[1].start


def test_streamed_replies_split_prefill_and_decode() -> None:
    from .test_stream import streaming_team

    name = plan_for("streamed trace", sub("a", "one two three"), sub("b", "four"))
    events = list(streaming_team().stream(name))
    trace = events[-1].result.trace  # type: ignore[attr-defined]
    for sid in ("a", "b"):
        parent = f"subtask:{sid}@0"
        parts = [s.kind for s in trace.spans if s.parent == parent and s.kind in ("prefill", "decode")]
        assert parts == ["prefill", "decode"], parts
