"""The REPL's views that need no terminal: ``/trace`` shows routing decisions."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from tessera import Team, TeamConfig
from tessera.cli.chat._view import routing_lines, trace_view
from tests.graphs.conftest import plan_for, sub


def routed_result(tmp_path: Path) -> object:
    fn = "tests.fakes:"
    config = TeamConfig.from_dict(
        {
            "name": "routed",
            "state_dir": str(tmp_path / "state"),
            "models": {
                "planner": {"backend": "function", "callable": fn + "planner"},
                "small": {"backend": "function", "callable": fn + "broken"},
                "large": {"backend": "function", "callable": fn + "echo", "cost": 4},
            },
            "planner": {"model": "planner"},
            "specialists": {"general": {"description": "does anything", "max_attempts": 1}},
            "routing": {"tiers": ["small", "large"]},
            "memory": {"long_term": False},
        }
    )
    return Team(config).run(plan_for("trace routes", sub("a", "Write a haiku.")))


def test_trace_shows_each_routed_subtasks_route_escalations_and_cost(tmp_path: Path) -> None:
    result = routed_result(tmp_path)
    text = routing_lines(result).plain  # type: ignore[arg-type]
    assert text.splitlines()[0].startswith("a: smallest tier -> large, cost ")
    assert "escalated small -> large: RuntimeError: this tier cannot do it" in text
    console = Console(record=True, width=120, color_system=None)
    console.print(trace_view(result, result.subtasks[0].started or 0.0))  # type: ignore[arg-type]
    assert "escalated small -> large" in console.export_text()


def test_unrouted_runs_show_no_routing_lines() -> None:
    from tessera.types import RunResult, SubtaskResult, Timings

    result = RunResult(
        answer="x",
        plan=None,
        subtasks=[SubtaskResult(id="a", specialist="g", status="done", model="m")],
        timings=Timings(total_s=1, planning_s=0.1, overhead_s=0.01),
    )
    assert routing_lines(result).plain == ""


def test_a_rejected_plan_shows_its_subtasks_as_rejected_not_queued() -> None:
    """Issue 19, finding 6: once the user rejected the plan, no subtask is left looking queued."""
    from tessera.cli.chat._view import RunView, plan_tree
    from tessera.events import Done, PlanReady
    from tessera.types import Plan, RunResult, Timings

    plan = Plan.model_validate(
        {
            "subtasks": [
                {"id": "s1", "specialist": "poet", "instruction": "Write a haiku."},
                {"id": "s2", "specialist": "general", "instruction": "Count it.", "depends_on": ["s1"]},
            ]
        }
    )
    view = RunView("task")
    view.apply(PlanReady(plan=plan, replans=0, fallback=False))
    assert {s.status for s in view.states.values()} == {"queued"}
    timings = Timings(total_s=1, planning_s=0.1, overhead_s=0.01)
    view.apply(Done(result=RunResult(answer="", plan=plan, subtasks=[], timings=timings, status="rejected")))
    console = Console(record=True, width=120, color_system=None)
    console.print(plan_tree(plan, view.states))
    text = console.export_text()
    assert "s1 poet  rejected" in text and "s2 general  rejected" in text and "queued" not in text, text
