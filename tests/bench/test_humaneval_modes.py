"""HumanEval team modes: docstring examples, repair from them, the routed team, and what the report adds up.

Function models stand in for the team: a "small" one that writes a wrong function and a "large" one that
writes the right one. One real-model smoke test runs the routed team on two problems.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tessera.bench._humaneval_examples import Example, extract_examples
from tessera.bench._humaneval_modes import (
    Settings,
    first_block_end,
    repair_solver,
    routed_solver,
    single_solver,
)
from tessera.bench.humaneval import Problem, load_problems, run_humaneval
from tessera.models.function import FunctionModel, ScriptedModel
from tests.conftest import SHARED, run_cli
from tests.test_real_models import default_team, pool  # noqa: F401 - fixtures for the smoke test

HUMANEVAL = SHARED / "data" / "HumanEval.jsonl.gz"
needs_humaneval = pytest.mark.skipif(not HUMANEVAL.is_file(), reason=f"{HUMANEVAL} is absent")


def tiny(entry: str, prompt: str, solution: str, hidden_assert: str) -> Problem:
    """A one-function problem; ``hidden_assert`` is its hidden test (the prompt never shows it)."""
    test = f"def check(candidate):\n    assert {hidden_assert}\n"
    return Problem(f"Tiny/{entry}", prompt, f"    return {solution}\n", test, entry)


ADD = tiny(
    "add",
    'def add(a: int, b: int) -> int:\n    """Add two numbers.\n    >>> add(2, 3)\n    5\n    """\n',
    "a + b",
    "candidate(40, 2) == 42",
)
TWICE = tiny(
    "twice",
    'def twice(x):\n    """Double x.\n    Examples:\n    twice(4) ==> 8\n    """\n',
    "2 * x",
    "candidate(21) == 42",
)
BARE = tiny("neg", 'def neg(x):\n    """Minus x."""\n', "-x", "candidate(5) == -5")

RIGHT = {
    "add": "def add(a, b):\n    return a + b",
    "twice": "def twice(x):\n    return 2 * x",
    "neg": "def neg(x):\n    return -x",
}
WRONG = {
    "add": "def add(a, b):\n    return a - b",
    "twice": "def twice(x):\n    return x + 2",  # right on twice(2) only: the example twice(4) catches it
    "neg": "def neg(x):\n    return -x +",  # a syntax error
}


def fenced(code: str) -> str:
    return f"Sure:\n```python\n{code}\n```\n\nThis works because it is right."


def entry_of(messages: list[dict[str, Any]]) -> str:
    return next(name for name in RIGHT if f"def {name}(" in messages[0]["content"])


def fake_small(messages: list[dict[str, Any]], **_: Any) -> str:
    """Writes a wrong function, except for ``add`` (right)."""
    time.sleep(0.02)
    name = entry_of(messages)
    return fenced(RIGHT[name] if name == "add" else WRONG[name])


def fake_large(messages: list[dict[str, Any]], **_: Any) -> str:
    """Writes the right function."""
    time.sleep(0.05)
    return fenced(RIGHT[entry_of(messages)])


# -- examples -------------------------------------------------------------------------------------


@needs_humaneval
def test_examples_of_real_prompts_in_each_form() -> None:
    problems = {p.task_id: p for p in load_problems(HUMANEVAL)}

    def examples(number: int) -> list[Example]:
        problem = problems[f"HumanEval/{number}"]
        return extract_examples(problem.prompt, problem.entry_point)

    assert examples(0) == [  # doctest, output on the next line
        Example("has_close_elements([1.0, 2.0, 3.0], 0.5)", "False"),
        Example("has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)", "True"),
    ]
    assert examples(108)[0] == Example("count_nums([])", "0")  # doctest `>>> f(x) == y`, no output line
    assert examples(69) == [  # prose ==
        Example("search([4, 1, 2, 2, 3, 1])", "2"),
        Example("search([1, 2, 2, 3, 3, 3, 4, 4, 4])", "3"),
        Example("search([5, 5, 4, 4, 4])", "-1"),
    ]
    assert examples(72)[0] == Example("will_it_fly([1, 2], 5)", "False")  # ➞, a comment line after
    assert examples(97)[0] == Example("multiply(148, 412)", "16")  # "should return 16."
    assert examples(76)[0] == Example("is_simple_power(1, 4)", "True")  # "=> true"
    assert examples(78)[0] == Example('hex_key("AB")', "1")  # "For num = "AB" the output should be 1."
    assert examples(67) == []  # "f(...) ->19 - 5 - 6 = 8" is not a literal: skipped, not guessed
    assert examples(80) == []  # is_happy(a) => False: the argument is not a literal
    assert examples(38) == []  # no examples at all


@needs_humaneval
def test_the_reference_solutions_pass_the_examples_of_problems_0_to_39() -> None:
    problems = load_problems(HUMANEVAL, limit=40)

    def reference(messages: list[dict[str, Any]], **_: Any) -> str:
        return fenced(
            next(p.prompt + p.canonical_solution for p in problems if p.prompt in messages[0]["content"])
        )

    solve = repair_solver("ref", FunctionModel(reference), 1)
    report = run_humaneval(problems, solve, jobs=4)
    summary = report.to_json()
    assert summary["passed"] == 40 and summary["repairs"] == 0
    assert summary["with_examples"] == 39  # HumanEval/38 shows none
    assert summary["passed_check"] == 40  # with no examples, the check is that the program runs


def test_examples_come_from_the_prompt_never_from_the_hidden_tests() -> None:
    hidden = tiny("neg", BARE.prompt, "-x", "candidate(987654) == -987654 and neg(3) == -3")
    assert extract_examples(hidden.prompt, hidden.entry_point) == []
    model = ScriptedModel([fenced(WRONG["neg"]), fenced("def neg(x):\n    return x")])
    report = run_humaneval([hidden], repair_solver("m", model, 3), jobs=1)
    sent = json.dumps([messages for messages, _ in model.calls])
    assert "987654" not in sent and "neg(3)" not in sent
    (completion,) = report.completions
    assert (completion.examples, completion.repairs, completion.examples_passed) == (0, 1, True)
    assert report.failures[0].reason == "AssertionError: assert candidate(987654) == -987654 and neg(3) == -3"


# -- repair ---------------------------------------------------------------------------------------


def test_repair_sends_the_failing_example_back_and_the_repaired_code_is_judged() -> None:
    model = ScriptedModel([fenced(WRONG["add"]), fenced(RIGHT["add"])])
    report = run_humaneval([ADD], repair_solver("coder", model, 2), jobs=1)
    assert report.passed == 1
    repair_request = model.calls[1][0]
    assert [m["role"] for m in repair_request] == ["user", "assistant", "user"]
    assert repair_request[1]["content"] == f"```python\n{WRONG['add']}\n```"
    assert (
        "1 of the 1 examples in the docstring failed:\n- add(2, 3): expected 5, got -1"
        in (repair_request[2]["content"])
    )
    (completion,) = report.completions
    assert (completion.repairs, completion.calls, completion.examples_passed) == (1, {"coder": 2}, True)


def test_the_hidden_tests_judge_the_repaired_code_not_the_examples() -> None:
    cheat = "def add(a, b):\n    return 5"  # passes add(2, 3) == 5, fails the hidden test
    model = ScriptedModel([fenced(WRONG["add"]), fenced(cheat)])
    report = run_humaneval([ADD], repair_solver("coder", model, 1), jobs=1)
    assert report.passed == 0
    assert report.failures[0].reason == "AssertionError: assert candidate(40, 2) == 42"
    assert report.completions[0].examples_passed is True


def test_a_reply_without_code_or_with_an_error_is_repaired_and_repairs_stop_at_n() -> None:
    crash = "def add(a, b):\n    return a / 0"
    model = ScriptedModel(["I cannot write code today.", fenced(crash), fenced(WRONG["add"])])
    report = run_humaneval([ADD], repair_solver("coder", model, 2), jobs=1)
    calls = [messages for messages, _ in model.calls]
    assert "had no ```python code block" in calls[1][-1]["content"]
    assert "add(2, 3) raised ZeroDivisionError: division by zero" in calls[2][-1]["content"]
    (completion,) = report.completions
    assert (completion.repairs, completion.code, completion.examples_passed) == (2, WRONG["add"], False)
    assert report.passed == 0  # the last code that came back is judged


def test_repair_zero_and_single_mode_check_nothing() -> None:
    model = ScriptedModel([fenced(WRONG["add"])])
    report = run_humaneval([ADD], single_solver("coder", model), jobs=1)
    (completion,) = report.completions
    assert (completion.repairs, completion.examples_passed, len(model.calls)) == (0, None, 1)


# -- routed ---------------------------------------------------------------------------------------


def test_routed_escalates_exactly_when_the_small_models_code_fails_its_check() -> None:
    small, large = FunctionModel(fake_small), FunctionModel(fake_large)
    report = run_humaneval([ADD, TWICE, BARE], routed_solver(("small", small), ("large", large)), jobs=1)
    rows = {row["task_id"]: row for row in report.to_json()["problems"]}
    assert rows["Tiny/add"]["escalated"] is False and rows["Tiny/add"]["model"] == "small"
    assert rows["Tiny/twice"]["escalated"] is True and rows["Tiny/twice"]["model"] == "large"
    assert rows["Tiny/neg"]["escalated"] is True  # no examples: its syntax error is what escalates it
    assert report.passed == 3
    assert report.to_json()["model_calls"] == {"small": 3, "large": 2}


def test_routed_without_examples_keeps_the_small_answer_that_runs() -> None:
    small = FunctionModel(lambda m, **_: fenced("def neg(x):\n    return x"))  # wrong, but it runs
    large = ScriptedModel([])  # never called
    report = run_humaneval([BARE], routed_solver(("small", small), ("large", large)), jobs=1)
    assert report.completions[0].escalated is False and report.passed == 0


def test_routed_large_model_repairs_and_keeps_the_small_code_if_it_writes_none() -> None:
    small = FunctionModel(lambda m, **_: fenced(WRONG["add"]))
    large = ScriptedModel([fenced("def add(a, b):\n    return a * b"), fenced(RIGHT["add"])])
    report = run_humaneval([ADD], routed_solver(("small", small), ("large", large), repairs=1), jobs=1)
    (completion,) = report.completions
    assert (completion.escalated, completion.repairs, completion.model, report.passed) == (
        True,
        1,
        "large",
        1,
    )

    silent = ScriptedModel(["no idea", "still no idea"])
    report = run_humaneval([ADD], routed_solver(("small", small), ("large", silent), repairs=1), jobs=1)
    (completion,) = report.completions
    assert (completion.model, completion.code, completion.repairs) == ("small", WRONG["add"], 1)


def test_the_reports_counts_and_seconds_add_up() -> None:
    small, large = FunctionModel(fake_small), FunctionModel(fake_large)
    report = run_humaneval([ADD, TWICE, BARE], routed_solver(("small", small), ("large", large)), jobs=1)
    summary = report.to_json()
    by_model = summary["generation_s_by_model"]
    assert by_model["small"] >= 3 * 0.02 and by_model["large"] >= 2 * 0.05
    assert summary["generation_s"] == pytest.approx(by_model["small"] + by_model["large"], abs=0.02)
    rows = summary["problems"]
    for model in ("small", "large"):
        assert sum(r["generation_s"].get(model, 0) for r in rows) == pytest.approx(by_model[model], abs=0.02)
    assert summary["generation_s"] <= summary["seconds"]
    chars = summary["reply_chars_by_model"]
    assert chars["small"] == sum(r["reply_chars"].get("small", 0) for r in rows) > 0
    cut = [fenced(RIGHT[name]).split("\n\nThis")[0] for name in ("twice", "neg")]  # up to the fence
    assert chars["large"] == sum(map(len, cut))
    assert summary["escalated"] == sum(r["escalated"] for r in rows) == 2
    assert (summary["with_examples"], summary["checked"], summary["passed_check"]) == (2, 3, 3)
    assert summary["passed"] + len(summary["failures"]) == summary["total"] == 3


# -- stop at the first code block --------------------------------------------------------------------


def test_first_block_end() -> None:
    assert first_block_end("```python\nx = 1\n") is None
    assert first_block_end("```python\nx = 1\n```\nmore") == len("```python\nx = 1\n```")
    shell = "```bash\nls\n```\nthen\n```py\ny = 2\n```"
    assert first_block_end(shell) == len(shell)
    assert first_block_end("Here:\n```\nz = 3\n```") == len("Here:\n```\nz = 3\n```")


async def test_generation_stops_at_the_end_of_the_first_code_block() -> None:
    produced: list[str] = []

    async def streaming(messages: list[dict[str, Any]], **_: Any) -> Any:
        for piece in ["```python\n", RIGHT["add"], "\n``", "`\n", "\nExplanation: ", "it adds."]:
            produced.append(piece)
            yield piece

    full = await repair_solver("m", FunctionModel(streaming), 0, Settings(stop_at_fence=False))(ADD)
    assert produced[-1] == "it adds." and full.code == RIGHT["add"]
    produced.clear()
    made = await single_solver("m", FunctionModel(streaming))(ADD)
    assert made.code == RIGHT["add"]
    assert "\nExplanation: " not in produced


# -- the command ----------------------------------------------------------------------------------


def write_team(path: Path) -> Path:
    import yaml

    model = {"backend": "function"}
    path.write_text(
        yaml.safe_dump(
            {
                "name": "bench",
                "models": {
                    "small": {**model, "callable": "tests.bench.test_humaneval_modes:fake_small"},
                    "coder": {**model, "callable": "tests.bench.test_humaneval_modes:fake_large"},
                },
                "planner": {"model": "coder"},
                "specialists": {"code": {"description": "writes code", "kind": "coder", "model": "coder"}},
            }
        )
    )
    return path


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.jsonl"
    rows = [{k: getattr(p, k) for k in Problem.__dataclass_fields__} for p in (ADD, TWICE, BARE)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_cli_modes(tmp_path: Path, tiny_data: Path) -> None:
    team = str(write_team(tmp_path / "team.yaml"))

    def bench(*args: str) -> dict[str, Any]:
        done = run_cli("bench", "humaneval", "--team", team, "--data", str(tiny_data), "--json", *args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    alone = bench("--model", "small", "-j", "1")
    assert (alone["mode"], alone["passed"], alone["model_calls"]) == ("model:small", 1, {"small": 3})
    routed = bench("--routed", "--repair", "1")
    assert routed["mode"] == "routed:small->coder+repair1"
    assert (routed["passed"], routed["escalated"], routed["model_calls"]) == (3, 2, {"small": 3, "coder": 2})


def test_cli_rejects_mixed_or_unknown_modes(tmp_path: Path, tiny_data: Path) -> None:
    team = str(write_team(tmp_path / "team.yaml"))
    done = run_cli("bench", "humaneval", "--canonical", "--repair", "1", "--data", str(tiny_data))
    assert done.returncode == 2 and "--repair need(s) --team FILE" in done.stderr
    done = run_cli("bench", "humaneval", "--team", team, "--model", "small", "--routed")
    assert done.returncode == 2 and "choose --model NAME or --routed, not both" in done.stderr
    done = run_cli("bench", "humaneval", "--team", team, "--model", "big", "--data", str(tiny_data))
    assert done.returncode == 2
    assert done.stderr.strip() == "--model: unknown model 'big' (known: coder, small)"


# -- real models ------------------------------------------------------------------------------------


@pytest.mark.real_models
@pytest.mark.slow
@needs_humaneval
def test_routed_team_on_two_real_problems(pool: Any) -> None:  # noqa: F811 - the fixture imported above
    wanted = {"HumanEval/0", "HumanEval/4"}
    problems = [p for p in load_problems(HUMANEVAL, limit=10) if p.task_id in wanted]
    solve = routed_solver(("small", pool.get("small")), ("coder", pool.get("coder")), repairs=1)
    summary = run_humaneval(problems, solve, jobs=1).to_json()
    assert summary["total"] == 2 and summary["passed"] >= 1, summary
    assert summary["generation_s_by_model"]["small"] > 0
    for row in summary["problems"]:
        assert row["escalated"] is (row["model"] == "coder")
        assert row["escalated"] or row["examples_passed"] is True
