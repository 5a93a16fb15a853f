"""Streamed planning: subtasks start while the planner is still writing the plan."""

from __future__ import annotations

from typing import Any

from tessera import Team
from tessera.agents._plan_stream import PlanScanner
from tessera.types import Plan

from .. import fakes
from .conftest import plan_for, sub, team


def slow_team(worker: str = "echo", **extra: Any) -> Team:
    return team({"worker": worker, "planner": "slow_planner"}, extra=extra)


def test_the_first_subtask_starts_before_the_plan_is_finished() -> None:
    task = plan_for(
        "stream four",
        sub("a", "first"),
        sub("b", "second"),
        sub("c", "third uses {{a}}", ["a"]),
        sub("d", "fourth uses {{b}} and {{c}}", ["b", "c"]),
    )
    result = slow_team().run(task)
    assert result.status == "done", result.notes
    finished = fakes.PLAN_FINISHED[task]
    starts = {s.id: s.started for s in result.subtasks}
    assert starts["a"] is not None and starts["a"] < finished - 1.0  # well before the plan's last piece
    assert starts["b"] is not None and starts["b"] < finished
    by_id = {s.id: s for s in result.subtasks}
    assert by_id["c"].output == "did: third uses did: first"
    assert by_id["d"].output.startswith("did: fourth uses did: second and did: third")
    assert [s.id for s in result.subtasks] == ["a", "b", "c", "d"]  # each ran once, results in plan order


def test_without_streaming_nothing_starts_before_the_plan_is_finished() -> None:
    task = plan_for("stream off", sub("a", "first"), sub("b", "second"))
    result = slow_team(planner={"stream": False}).run(task)
    finished = fakes.PLAN_FINISHED[task]
    assert all(s.started is not None and s.started >= finished for s in result.subtasks)


def test_a_subtask_whose_dependency_is_not_planned_yet_waits() -> None:
    task = plan_for("stream forward ref", sub("x", "needs {{y}}", ["y"]), sub("y", "the dependency"))
    result = slow_team().run(task)
    # the plan is valid (order in the list does not matter); x could only start once y existed
    by_id = {s.id: s for s in result.subtasks}
    assert result.status == "done"
    assert by_id["x"].output == "did: needs did: the dependency"
    assert by_id["x"].started is not None and by_id["y"].ended is not None
    assert by_id["x"].started >= by_id["y"].started  # type: ignore[operator]


def test_an_invalid_streamed_plan_keeps_only_work_the_repaired_plan_still_has() -> None:
    calls: list[str] = []
    first = {"subtasks": [sub("a", "keep me"), sub("b", "drop me"), sub("c", "x", ["nope"])]}
    repaired = {"subtasks": [sub("a", "keep me"), sub("b2", "instead")]}

    def plan(messages: list[dict[str, Any]]) -> Any:
        calls.append("plan")
        return first if len(calls) == 1 else repaired

    fakes.PLANS["stream repair"] = plan
    import os
    import tempfile

    with tempfile.NamedTemporaryFile("r", suffix=".log") as log:
        os.environ["TESSERA_TEST_CALLS"] = log.name
        try:
            result = slow_team("counting").run("stream repair")
        finally:
            del os.environ["TESSERA_TEST_CALLS"]
        ran = log.read().splitlines()
    assert result.status == "done" and [s.id for s in result.subtasks] == ["a", "b2"]
    assert ran.count("keep me") == 1  # started early, kept, not run again
    assert "instead" in ran
    assert any("plan rejected" in n for n in result.notes)


def test_the_scanner_finds_subtasks_as_their_braces_close() -> None:
    plan = Plan.model_validate({"subtasks": [sub("a", 'tricky "} ] {" text'), sub("b", "x {{a}}", ["a"])]})
    text = plan.model_dump_json()
    scanner, seen = PlanScanner(), []
    for char in text:
        seen.extend(item["id"] for item in scanner.feed(char))
        if '"b"' not in scanner.text:
            assert seen in ([], ["a"])
    assert seen == ["a", "b"]
