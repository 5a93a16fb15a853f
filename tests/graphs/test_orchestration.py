"""The real graph driven by function models: planning, dispatch, failures, replans, parallelism."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tessera.agents.base import SpecialistRun, specialist
from tessera.agents.planner import validate_plan
from tessera.types import Plan

from .. import fakes
from ..conftest import run_cli, write_team
from .conftest import plan_for, sub, team


@pytest.mark.parametrize(
    ("subtasks", "problem"),
    [
        ([sub("a", who="nobody")], "a: unknown specialist 'nobody' (known: general)"),
        ([sub("a"), sub("a")], "duplicate subtask id 'a'"),
        ([sub("a", deps=["zz"])], "a: depends on 'zz', which is not in the plan"),
        ([sub("a", deps=["a"])], "a: depends on itself"),
        ([sub("a", deps=["b"]), sub("b", deps=["a"])], "dependency cycle: a -> b -> a"),
        ([sub("a"), sub("b", "use {{a}}")], "b: quotes {{a}} but does not depend on 'a'"),
        ([sub(str(i)) for i in range(3)], "too many subtasks: 3 (at most 2)"),
    ],
)
def test_plan_validation(subtasks: list[dict[str, Any]], problem: str) -> None:
    problems = validate_plan(Plan.model_validate({"subtasks": subtasks}), {"general": None}, max_subtasks=2)
    assert problem in problems


def test_dependencies_and_references_flow_through() -> None:
    task = plan_for("refs", sub("a", "first"), sub("b", "second"), sub("c", "join {{a}} + {{b}}", ["a", "b"]))
    result = team().run(task)
    outputs = {s.id: s.output for s in result.subtasks}
    assert outputs["c"] == "did: join did: first + did: second"
    assert result.answer.startswith("final: ") and result.status == "done"
    assert all(s.status == "done" and s.attempts == 1 for s in result.subtasks)


def test_a_dependency_that_is_not_quoted_still_hands_its_result_over() -> None:
    """A small planner writes "Compute the square of the order number" after "Read the order number":
    the dependency is listed but not quoted. The result must still reach the subtask."""
    task = plan_for("unquoted", sub("a", "read the order"), sub("b", "square the order number", ["a"]))
    outputs = {s.id: s.output for s in team().run(task).subtasks}
    assert outputs["b"] == "did: square the order number\n\nInput from earlier steps:\ndid: read the order"


def test_invalid_plan_is_repaired_once() -> None:
    calls: list[int] = []

    def plan(messages: list[dict[str, Any]]) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            return {"subtasks": [sub("a", who="ghost")]}
        assert "unknown specialist 'ghost'" in messages[-1]["content"]
        return {"subtasks": [sub("a", "fixed")]}

    fakes.PLANS["repair"] = plan
    result = team().run("repair")
    assert [s.output for s in result.subtasks] == ["did: fixed"]
    assert any("unknown specialist 'ghost'" in n for n in result.notes)


def test_plan_failing_twice_falls_back_to_one_general_subtask() -> None:
    fakes.PLANS["fallback"] = {"subtasks": [sub("a", deps=["a"])]}
    result = team().run("fallback")
    assert result.plan is not None and [(s.id, s.specialist) for s in result.plan.subtasks] == [
        ("s1", "general")
    ]
    assert result.subtasks[0].output == "did: fallback"
    assert any("fell back" in n for n in result.notes)


def test_failure_skips_dependents_and_nothing_hangs() -> None:
    task = plan_for(
        "fails",
        sub("a", "FAIL now"),
        sub("b", "after {{a}}", ["a"]),
        sub("c", "c after b", ["b"]),
        sub("d", "ok"),
    )
    result = team().run(task)
    status = {s.id: s.status for s in result.subtasks}
    assert status == {"a": "failed", "b": "skipped", "c": "skipped", "d": "done"}
    failed = result.subtasks[0]
    assert failed.attempts == 2 and "asked to fail" in (failed.error or "")
    assert "dependency 'a' failed" in (result.subtasks[1].error or "")


def test_timeout_counts_as_a_failed_attempt() -> None:
    t = team(general={"description": "d", "model": "worker", "timeout_s": 0.3, "max_attempts": 1})
    result = t.run(plan_for("slow", sub("a", "HANG please")))
    assert result.subtasks[0].status == "failed"
    assert result.subtasks[0].error == "timed out after 0.3s"


def test_replan_keeps_finished_results() -> None:
    def plan(messages: list[dict[str, Any]]) -> dict[str, Any]:
        if "Replan because" in str(messages):
            return {"subtasks": [sub("a", "one"), sub("b2", "fixed {{a}}", ["a"])]}
        return {"subtasks": [sub("a", "one"), sub("b", "FAIL {{a}}", ["a"])]}

    fakes.PLANS["please replan"] = plan
    result = team().run("please replan")
    assert result.replans == 1
    by_id = {s.id: s for s in result.subtasks}
    assert by_id["b2"].output == "did: fixed did: one" and by_id["a"].attempts == 1


def test_independent_subtasks_run_in_parallel() -> None:
    names = [f"m{i}" for i in range(7)]
    specialists = {n: {"description": n, "model": n} for n in names}
    t = team({n: "sleeper" for n in names}, **specialists)
    subtasks = [sub(f"s{i}", who=f"m{i}") for i in range(6)]
    subtasks.append(sub("last", deps=[f"s{i}" for i in range(6)], who="m6"))
    result = t.run(plan_for("parallel", *subtasks))
    makespan = max(s.ended for s in result.subtasks) - min(s.started for s in result.subtasks)  # type: ignore[type-var, operator]
    assert makespan <= 1.25 * 1.0, makespan


def test_a_chain_step_starts_as_soon_as_its_dependency_ends() -> None:
    names = [f"m{i}" for i in range(6)]
    t = team({n: "sleeper" for n in names}, **{n: {"description": n, "model": n} for n in names})
    subtasks = [sub("c1", who="m0"), sub("c2", deps=["c1"], who="m1")]
    subtasks += [sub(f"i{i}", who=f"m{i + 2}") for i in range(4)]
    result = t.run(plan_for("chain", *subtasks))
    by_id = {s.id: s for s in result.subtasks}
    assert by_id["c2"].started - by_id["c1"].ended < 0.05  # type: ignore[operator]


def test_run_json_prints_a_run_result(tmp_path: Path) -> None:
    team_file = write_team(
        tmp_path / "team.yaml",
        {"planner": {"backend": "function", "callable": "tessera.testing.demo:echo"}},
    )
    out = run_cli("run", "--team", str(team_file), "--json", "say hello")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {"answer", "plan", "subtasks", "replans", "timings", "thread_id"} <= set(data)
    assert {"total_s", "planning_s", "overhead_s"} <= set(data["timings"])
    (only,) = data["subtasks"]
    assert {
        "id",
        "specialist",
        "model",
        "tier",
        "status",
        "output",
        "attempts",
        "started",
        "ended",
        "error",
    } <= set(only)


@specialist(name="terse")
class Terse:
    """A specialist that fails without a word: it raises a bare exception, or returns an empty error."""

    manages_attempts = True

    async def run(self, instruction: str) -> SpecialistRun:
        if instruction == "raise":
            raise RuntimeError()
        if instruction == "lines":
            return SpecialistRun(error="tests failed:\n\n  test_add: 1 != 2\n")
        return SpecialistRun(error="")


def test_a_failed_subtask_always_has_a_one_line_reason_naming_its_model() -> None:
    task = plan_for(
        "say nothing",
        sub("a", "raise", who="terse"),
        sub("b", "quiet", who="terse"),
        sub("c", "lines", who="terse"),
    )
    result = team(terse={"description": "fails", "kind": "terse", "model": "worker"}).run(task)
    by_id = {s.id: s for s in result.subtasks}
    assert {s.status for s in result.subtasks} == {"failed"}
    assert all(s.model == "worker" for s in result.subtasks)
    assert by_id["a"].error == "RuntimeError with no message in specialist 'terse' on model 'worker'"
    assert by_id["b"].error == "specialist 'terse' on model 'worker' failed and gave no reason"
    assert by_id["c"].error == "tests failed: | test_add: 1 != 2"
