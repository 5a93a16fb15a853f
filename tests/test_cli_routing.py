"""``tessera stats``: what routing did on a team's recorded runs."""

from __future__ import annotations

import json
from pathlib import Path

from tessera import Team, TeamConfig
from tests.conftest import run_cli, write_team
from tests.graphs.conftest import plan_for, sub


def test_stats_summarises_recorded_routed_subtasks(tmp_path: Path) -> None:
    fn = "tests.fakes:"
    models = {
        "planner": {"backend": "function", "callable": fn + "planner"},
        "small": {"backend": "function", "callable": fn + "echo", "cost": 1},
        "large": {"backend": "function", "callable": fn + "echo", "cost": 10},
    }
    team_file = write_team(
        tmp_path / "team.yaml",
        models,
        specialists={"general": {"description": "does anything", "max_attempts": 1}},
        routing={"tiers": ["small", "large"]},
    )
    team = Team(TeamConfig.from_yaml(team_file))
    results = [
        team.run(plan_for("stats ok", sub("a", "Write a haiku."))).subtasks[0],
        team.run(plan_for("stats fail", sub("b", "FAIL on small, FAIL on large"))).subtasks[0],
        team.run(plan_for("stats ok again", sub("c", "Write a limerick."))).subtasks[0],
    ]
    team.close()
    out = run_cli("stats", "--team", str(team_file), "--json")
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert (stats["subtasks"], stats["succeeded"]) == (3, 2)
    assert stats["tier_share"] == {"large": round(1 / 3, 4), "small": round(2 / 3, 4)}
    assert stats["first_tier_share"] == {"small": 1.0}
    assert stats["escalation_rate"] == round(1 / 3, 4)
    assert stats["cost"] == round(sum(r.cost for r in results), 6)
    assert 0 < stats["cost_vs_largest"] < 1
    assert stats["success"]["general"] == {
        "large": {"attempts": 1, "success_rate": 0.0},
        "small": {"attempts": 3, "success_rate": round(2 / 3, 4)},
    }
    text = run_cli("stats", "--team", str(team_file))
    assert "escalation rate   33%" in text.stdout and "general" in text.stdout


def test_stats_without_recorded_runs_says_so(tmp_path: Path) -> None:
    team_file = write_team(
        tmp_path / "team.yaml", {"m": {"backend": "function", "callable": "tests.fakes:echo"}}
    )
    out = run_cli("stats", "--team", str(team_file))
    assert out.returncode == 0 and "no routed subtasks recorded yet" in out.stdout
