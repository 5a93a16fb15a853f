"""Spans recorded by the real graph: planning, queue waits, subtasks, model calls, tools, handoffs, answer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tessera import Team, TeamConfig
from tessera.trace import WORK_KINDS
from tessera.types import RunResult, Span, Trace, union_length

from ..agents.test_custom import custom_team, task
from .conftest import plan_for, sub


def nap(messages: list[dict[str, Any]], **_: Any) -> str:
    """A worker that sleeps for the seconds its instruction starts with ("0.2 do this")."""
    text = messages[-1]["content"]
    time.sleep(float(text.split()[0]))
    return "did: " + text


def nap_team(max_concurrency: int = 8) -> Team:
    return Team(
        TeamConfig.from_dict(
            {
                "name": "naps",
                "models": {
                    "planner": {"backend": "function", "callable": "tests.fakes:planner"},
                    "worker": {"backend": "function", "callable": "tests.graphs.test_tracing:nap"},
                },
                "planner": {"model": "planner"},
                "specialists": {"general": {"description": "does anything", "model": "worker"}},
                "runtime": {"max_concurrency": max_concurrency},
                "memory": {"long_term": False},
            }
        )
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


def test_overhead_agrees_with_the_timings() -> None:
    result = run_dag()
    trace = result.trace
    assert trace is not None
    work = [(s.start, s.end) for s in trace.spans if s.kind in WORK_KINDS]
    total = trace.ended - trace.started
    assert abs(trace.overhead_s - (total - union_length(work, trace.started, trace.ended))) < 1e-9
    # timings count whole planning/answer/join calls as busy; the trace only the model inside them
    steps = sum(s.seconds for s in trace.spans if s.kind in ("planning", "join", "answer"))
    assert result.timings.overhead_s - 0.01 <= trace.overhead_s <= result.timings.overhead_s + steps + 0.05
    assert trace.overhead_s < total


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
