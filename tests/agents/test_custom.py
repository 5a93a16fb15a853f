"""Custom specialists and tools from a user's module, run from YAML through the real graph and CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tessera import Team
from tessera.errors import UserError

from ..conftest import run_cli, write_team


def custom_team(tmp_path: Path, **sections: Any) -> Path:
    return write_team(
        tmp_path / "team.yaml",
        {
            "planner": {"backend": "function", "callable": "tests.agents.custom:plan"},
            "caller": {"backend": "function", "callable": "tests.agents.custom:tool_caller"},
        },
        **{"imports": ["tests.agents.custom"], **sections},
        specialists={
            "counter": {"description": "counts words", "model": "caller", "tools": ["word_count"]},
            "shouter": {"description": "shouts", "kind": "shouter"},
            "reverser": {"description": "reverses", "kind": "tests.agents.custom:Reverser"},
            "by_path": {
                "description": "counts via a tool named by path",
                "model": "caller",
                "tools": ["tests.agents.custom:word_count"],
            },
            "tool_agent": {"description": "bare tool", "kind": "tool", "tool": "word_count"},
        },
    )


def task(*subtasks: tuple[str, str, str]) -> str:
    plan = [{"id": i, "specialist": who, "instruction": text, "depends_on": []} for i, who, text in subtasks]
    return "PLAN " + json.dumps({"subtasks": plan})


def test_custom_specialists_and_tools_run_from_yaml(tmp_path: Path) -> None:
    team_file = custom_team(tmp_path)
    out = run_cli(
        "run",
        "--team",
        str(team_file),
        "--json",
        task(
            ("a", "counter", "one two three"),
            ("b", "shouter", "hello"),
            ("c", "reverser", "abc"),
            ("d", "by_path", "four five"),
            ("e", "tool_agent", "six seven eight nine"),
        ),
    )
    assert out.returncode == 0, out.stderr
    results = {s["id"]: s for s in json.loads(out.stdout)["subtasks"]}
    assert {i: s["output"] for i, s in results.items()} == {
        "a": "tool said 3",
        "b": "HELLO",
        "c": "cba",
        "d": "tool said 2",
        "e": "4",
    }
    assert results["c"]["artifacts"] == {"by": "reverser"}


def test_a_specialist_can_only_call_its_own_tools(tmp_path: Path) -> None:
    team = Team.from_yaml(custom_team(tmp_path))
    result = team.run(task(("a", "counter", "SECRET please")))
    (only,) = result.subtasks
    assert only.status == "done"
    assert only.output == "tool said error: no tool named 'secret' (available: word_count)"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"kind": "nope"},
            "specialists.shouter.kind: unknown kind 'nope' (known: general, coder, tool, retriever",
        ),
        (
            {"kind": "tests.agents.custom:Missing"},
            "specialists.shouter.kind: module 'tests.agents.custom' has no attribute 'Missing'",
        ),
        ({"kind": "tests.agents.custom:word_count"}, "is not a class with a run(instruction) method"),
        ({"tools": ["ghost"]}, "specialists.shouter.tools.0: unknown tool 'ghost'"),
    ],
)
def test_bad_custom_names_fail_before_the_run(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    team_file = custom_team(tmp_path)
    import yaml

    data = yaml.safe_load(team_file.read_text())
    data["specialists"]["shouter"].update(change)
    team_file.write_text(yaml.safe_dump(data))
    out = run_cli("run", "--team", str(team_file), task(("b", "shouter", "x")))
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_an_unimportable_module_is_named(tmp_path: Path) -> None:
    team = Team.from_yaml(custom_team(tmp_path, imports=["tests.agents.nowhere"]))
    with pytest.raises(UserError, match=r"imports.0: cannot import 'tests.agents.nowhere'"):
        team.run("anything")


def test_the_coder_repairs_until_its_tests_pass_inside_a_run(tmp_path: Path) -> None:
    team_file = write_team(
        tmp_path / "team.yaml",
        {
            "planner": {"backend": "function", "callable": "tests.agents.custom:plan"},
            "coder": {"backend": "function", "callable": "tests.agents.custom:coder_model"},
        },
        specialists={"coder": {"description": "code", "kind": "coder", "model": "coder", "max_attempts": 2}},
    )
    instruction = "Write add(a, b).\nTests:\nassert add(2, 3) == 5\nassert add(-1, 1) == 0"
    result = Team.from_yaml(team_file).run(task(("c", "coder", instruction)))
    (only,) = result.subtasks
    assert only.status == "done" and only.attempts == 2 and only.output == "5"
    assert only.artifacts["tests"] == "passed" and "return a + b" in only.artifacts["code"]
