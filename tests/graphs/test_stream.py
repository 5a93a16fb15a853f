"""Team.stream: typed events in a sensible order, tokens as they are generated, the answer model."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tessera import Team
from tessera.events import AnswerToken, Done, PlanReady, Replan, SubtaskFinished, SubtaskStarted, Token

from .. import fakes
from .conftest import plan_for, sub, team


def streaming_team(**extra: Any) -> Team:
    return team({"worker": "streamer", "scribe": "scribe"}, extra=extra)


def test_events_arrive_in_order_with_tokens_per_subtask() -> None:
    task = plan_for("stream", sub("a", "one two"), sub("b", "three"), sub("c", "after {{a}}", ["a"]))
    events = list(streaming_team().stream(task))
    assert isinstance(events[0], PlanReady) and [s.id for s in events[0].plan.subtasks] == ["a", "b", "c"]
    assert isinstance(events[-1], Done) and events[-1].result.status == "done"
    for sid in ("a", "b", "c"):
        mine = [e for e in events if getattr(e, "id", None) == sid or _result_id(e) == sid]
        assert isinstance(mine[0], SubtaskStarted) and isinstance(mine[-1], SubtaskFinished)
        tokens = [e.text for e in mine if isinstance(e, Token)]
        assert len(tokens) > 1 and "".join(tokens) == mine[-1].result.output  # type: ignore[union-attr]
    finished_a = next(i for i, e in enumerate(events) if _result_id(e) == "a")
    started_c = next(i for i, e in enumerate(events) if isinstance(e, SubtaskStarted) and e.id == "c")
    assert finished_a < started_c
    answer = "".join(e.text for e in events if isinstance(e, AnswerToken))
    assert answer == events[-1].result.answer and answer.startswith("final: ")


def _result_id(event: Any) -> str | None:
    return event.result.id if isinstance(event, SubtaskFinished) else None


def test_a_replan_is_an_event_between_two_plans() -> None:
    def plan(messages: list[dict[str, Any]]) -> dict[str, Any]:
        if "Replan because" in str(messages):
            return {"subtasks": [sub("b", "fixed")]}
        return {"subtasks": [sub("a", "FAIL")]}

    fakes.PLANS["stream replan"] = plan
    kinds = [e.type for e in team().stream("stream replan")]
    assert kinds[0] == "plan" and kinds[-1] == "done"
    assert kinds.index("replan") < len(kinds) - 1 - kinds[::-1].index("plan")
    assert [k for k in kinds if k in ("plan", "replan")] == ["plan", "replan", "plan"]
    assert isinstance(next(e for e in team().stream("stream replan") if e.type == "replan"), Replan)


def test_the_answer_model_and_prompt_are_configurable() -> None:
    task = plan_for("answer model", sub("a", "x"), sub("b", "y"))
    t = streaming_team(answer={"model": "scribe", "system_prompt": "Be brief and kind."})
    events = list(t.stream(task))
    pieces = [e.text for e in events if isinstance(e, AnswerToken)]
    assert pieces == ["scribe", "(Be brief and)", ": 2 results"]
    assert t.run(task).answer == "scribe(Be brief and): 2 results"


def test_astream_works_inside_a_running_loop() -> None:
    async def collect() -> list[str]:
        return [e.type async for e in team().astream(plan_for("async", sub("a")))]

    assert asyncio.run(collect()) == [
        "plan",
        "subtask_started",
        "token",
        "subtask_finished",
        "answer_token",
        "done",
    ]


def test_closing_the_stream_early_stops_the_run() -> None:
    task = plan_for("stop early", sub("a", "HANG"), sub("b", "HANG"))
    stream = team().stream(task)
    assert next(stream).type == "plan"
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 2.5  # the subtasks hang for 3 s: close did not wait for them
