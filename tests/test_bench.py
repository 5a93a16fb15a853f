"""``tessera bench humaneval``: the harness scores reference solutions 164/164 and empty bodies 0/164."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import SHARED, run_cli

HUMANEVAL = SHARED / "data" / "HumanEval.jsonl.gz"
needs_humaneval = pytest.mark.skipif(
    not HUMANEVAL.is_file(), reason=f"{HUMANEVAL} is absent (../shared is not beside the checkout)"
)

TINY = [
    {
        "task_id": "Tiny/0",
        "prompt": 'def add(a: int, b: int) -> int:\n    """Add two numbers."""\n',
        "canonical_solution": "    return a + b\n",
        "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n",
        "entry_point": "add",
    },
    {
        "task_id": "Tiny/1",
        "prompt": 'def _twice(x):\n    return 2 * x\n\n\ndef quadruple(x):\n    """4x, via the helper."""\n',
        "canonical_solution": "    return _twice(_twice(x))\n",
        "test": "def check(candidate):\n    assert candidate(1) == 4\n    assert candidate(0) == 0\n",
        "entry_point": "quadruple",
    },
]


def fake_coder(messages: list[dict[str, Any]], **_: Any) -> str:
    """A coder model that answers every HumanEval problem with its reference solution (whole function)."""
    from tessera.bench.humaneval import load_problems

    asked = messages[-1]["content"]
    problem = next(p for p in load_problems() if p.prompt in asked)
    return f"Here you go:\n```python\n{problem.prompt}{problem.canonical_solution}```\n"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in TINY))
    return path


def bench(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Any:
    return run_cli("bench", "humaneval", *args, env=env, timeout=timeout)


@needs_humaneval
@pytest.mark.slow
def test_canonical_solutions_all_pass() -> None:
    done = bench("--canonical", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["passed"], report["total"], report["pass_at_1"]) == (164, 164, 1.0), report["failures"]


@needs_humaneval
@pytest.mark.slow
def test_empty_bodies_all_fail() -> None:
    done = bench("--empty", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["passed"], report["total"], report["pass_at_1"]) == (0, 164, 0.0)
    assert len(report["failures"]) == 164


def test_custom_data_and_json_shape(tiny: Path) -> None:
    done = bench("--canonical", "--data", str(tiny), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == {"passed", "total", "pass_at_1", "mode", "seconds", "failures"}
    assert (report["passed"], report["total"], report["pass_at_1"], report["mode"]) == (
        2,
        2,
        1.0,
        "canonical",
    )
    assert report["failures"] == []


def test_readable_output_lists_the_failures(tiny: Path) -> None:
    done = bench("--empty", "--data", str(tiny))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("humaneval (empty): 0/2 passed, pass@1 0.000, ")
    assert lines[1] == "  Tiny/0: AssertionError: assert candidate(2, 3) == 5"
    assert lines[2] == "  Tiny/1: AssertionError: assert candidate(1) == 4"


def test_limit_and_env_var(tiny: Path) -> None:
    done = bench("--canonical", "--limit", "1", "--json", env={"TESSERA_HUMANEVAL": str(tiny)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total"] == 1


def test_missing_data_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl.gz"
    done = bench("--canonical", "--data", str(missing))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"HumanEval data not found: {missing} (use --data FILE or set $TESSERA_HUMANEVAL)"
    ]


def test_exactly_one_source_of_solutions(tiny: Path) -> None:
    assert bench("--data", str(tiny)).returncode == 2
    done = bench("--canonical", "--empty", "--data", str(tiny))
    assert done.returncode == 2
    assert "choose one of --canonical, --empty or --team FILE" in done.stderr


def write_coder_team(path: Path, kind: str = "coder") -> Path:
    import yaml

    model = {"backend": "function", "callable": "tests.test_bench:fake_coder"}
    path.write_text(
        yaml.safe_dump(
            {
                "name": "bench",
                "models": {"coder": model},
                "planner": {"model": "coder"},
                "specialists": {
                    "chat": {"description": "talks", "model": "coder"},
                    "code": {"description": "writes code", "kind": kind, "model": "coder"},
                },
            }
        )
    )
    return path


@needs_humaneval
def test_team_coder_completes_the_problems(tmp_path: Path) -> None:
    done = bench("--team", str(write_coder_team(tmp_path / "team.yaml")), "--limit", "5", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["passed"], report["total"], report["pass_at_1"]) == (5, 5, 1.0), report["failures"]
    assert report["mode"] == "team:code/coder"


def test_team_coder_on_custom_data(tmp_path: Path, tiny: Path) -> None:
    team = write_coder_team(tmp_path / "team.yaml")
    done = bench("--team", str(team), "--json", env={"TESSERA_HUMANEVAL": str(tiny)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["pass_at_1"] == 1.0


def test_team_without_a_coder_is_exit_2(tmp_path: Path, tiny: Path) -> None:
    team = write_coder_team(tmp_path / "team.yaml", kind="general")
    done = bench("--team", str(team), "--data", str(tiny))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "team 'bench' has no specialist with kind 'coder' and a model (has: chat (general), code (general))"
    ]
