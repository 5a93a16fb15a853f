"""The planner reads small models' quotes as meant: no repair round trip for a self-quote or a missing dependency."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tessera.agents.planner import make_plan, validate_plan
from tessera.config import SpecialistConfig
from tessera.models.function import FunctionModel
from tessera.types import Subtask

TEAM = {
    "coder": SpecialistConfig(description="Writes and runs Python code.", model="m"),
    "general": SpecialistConfig(description="Explains things.", model="m"),
}


def planner_replying(*subtasks: dict[str, Any]) -> tuple[FunctionModel, list[int]]:
    calls: list[int] = []

    def reply(messages: Any, **_: Any) -> str:
        calls.append(len(messages))
        return json.dumps({"subtasks": list(subtasks)})

    return FunctionModel(reply), calls


def plan_of(model: FunctionModel, *, stream: bool = False) -> tuple[Any, list[Subtask]]:
    started: list[Subtask] = []
    outcome = asyncio.run(
        make_plan(model, "task", TEAM, max_subtasks=4, on_subtask=started.append if stream else None)
    )
    return outcome, started


def test_a_plan_that_quotes_itself_runs_without_a_repair() -> None:
    model, calls = planner_replying(
        {
            "id": "s1",
            "specialist": "coder",
            "instruction": "Compute fib(20) and print {{s1}}",
            "depends_on": [],
        },
        {"id": "s2", "specialist": "general", "instruction": "Explain {{s2}} the sequence", "depends_on": []},
    )
    outcome, _ = plan_of(model)
    assert outcome.attempts == 1 and not outcome.fallback and len(calls) == 1
    assert [s.instruction for s in outcome.plan.subtasks] == [
        "Compute fib(20) and print",
        "Explain  the sequence",
    ]
    assert validate_plan(outcome.plan, TEAM, 4) == []


def test_a_quote_of_an_earlier_subtask_becomes_a_dependency() -> None:
    model, calls = planner_replying(
        {"id": "s1", "specialist": "coder", "instruction": "Compute fib(20)", "depends_on": []},
        {"id": "s2", "specialist": "general", "instruction": "Explain {{s1}}", "depends_on": []},
    )
    for stream in (False, True):
        outcome, started = plan_of(model, stream=stream)
        assert outcome.attempts == 1
        assert outcome.plan.subtasks[1].depends_on == ["s1"]
        if stream:  # an early start sees the dependency too, so it waits for s1
            assert [s.depends_on for s in started] == [[], ["s1"]]


def test_a_quote_of_a_later_subtask_is_still_rejected() -> None:
    model, calls = planner_replying(
        {"id": "s1", "specialist": "coder", "instruction": "Use {{s2}}", "depends_on": []},
        {"id": "s2", "specialist": "general", "instruction": "Explain", "depends_on": []},
    )
    outcome, _ = plan_of(model)
    assert outcome.fallback and len(calls) == 2
    assert "s1: quotes {{s2}} but does not depend on 's2'" in outcome.problems
