"""The coder specialist: scripted model replies, the real sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tessera import ScriptedModel, TeamConfig
from tessera.agents.base import SpecialistContext, SpecialistRun
from tessera.agents.coder import (
    CODER_PROMPT,
    Coder,
    describe_failure,
    extract_code,
    run_with_tests,
    split_tests,
)
from tessera.tracing import Tracer
from tessera.types import Span


def coder(model: Any, tmp_path: Path, *, max_attempts: int = 3, **ctx: Any) -> Coder:
    """A coder on ``model``, with a team config built from a minimal dict."""
    config = TeamConfig.from_dict(
        {
            "name": "t",
            "models": {"m": {"backend": "function"}},  # the coder gets ``model`` itself
            "planner": {"model": "m"},
            "specialists": {
                "coder": {
                    "description": "writes code",
                    "kind": "coder",
                    "model": "m",
                    "max_attempts": max_attempts,
                }
            },
            "tools": {"python": {"wall_s": 2}},
        }
    )
    return Coder(
        SpecialistContext(
            name="coder",
            spec=config.specialists["coder"],
            team=config,
            model=model,
            tools=[],
            output_dir=tmp_path,
            **ctx,
        )
    )


async def traced(made: Coder, task: str) -> tuple[SpecialistRun, list[Span]]:
    """Run ``made`` on ``task`` inside a traced subtask; return the run and its ``call`` spans."""
    tracer = Tracer()
    with tracer.scope("subtask", "s1"):
        run = await made.run(task)
    return run, [s for s in tracer.spans if s.kind == "call"]


def fenced(code: str) -> str:
    return f"Here is the program:\n```python\n{code}\n```\n"


def prompt_text(model: ScriptedModel, call: int) -> str:
    """Every message of one model call, joined."""
    return "\n".join(str(m["content"]) for m in model.calls[call][0])


ADD_TASK = "Write a function add(a, b) that adds two numbers.\nTests:\nassert add(2, 2) == 4\nassert add(-1, 1) == 0\n"


async def test_first_try_success(tmp_path: Path) -> None:
    model = ScriptedModel([fenced("print(sum(range(10)))")])
    run, calls = await traced(coder(model, tmp_path), "Sum the numbers below 10.")
    assert (run.output, run.error, run.attempts) == ("45", None, 1)
    assert run.artifacts == {"code": "print(sum(range(10)))", "exit_code": 0, "stdout": "45\n", "tests": None}
    assert run.tokens > 0
    assert [s.attrs["call"] for s in calls] == ["model", "sandbox"]  # the model call, then the sandbox run
    times = [t for span in calls for t in (span.start, span.end)]
    assert times == sorted(times)
    system, user = model.calls[0][0]
    assert system == {"role": "system", "content": CODER_PROMPT}
    assert user["content"] == "Sum the numbers below 10."


async def test_the_specialists_system_prompt_replaces_the_built_in_one(tmp_path: Path) -> None:
    model = ScriptedModel([fenced("print('x')")])
    made = coder(model, tmp_path)
    made.ctx.spec.system_prompt = "Be terse."
    await made.run("Print x.")
    assert model.calls[0][0][0] == {"role": "system", "content": "Be terse."}


async def test_a_program_that_prints_nothing_answers_with_its_code(tmp_path: Path) -> None:
    run = await coder(ScriptedModel([fenced("x = 1")]), tmp_path).run("Set x.")
    assert (run.output, run.error) == ("x = 1", None)


async def test_a_runtime_error_is_sent_back_and_repaired(tmp_path: Path) -> None:
    model = ScriptedModel([fenced("print(1 / 0)"), fenced("print(1 / 1)")])
    run, calls = await traced(coder(model, tmp_path), "Divide one by one.")
    assert (run.output, run.error, run.attempts) == ("1.0", None, 2)
    repair = prompt_text(model, 1)
    assert "ZeroDivisionError: division by zero" in repair
    assert "print(1 / 0)" in repair
    assert [m["role"] for m in model.calls[1][0]] == ["system", "user", "assistant", "user"]
    assert len(calls) == 4


async def test_failure_after_max_attempts_is_returned_not_raised(tmp_path: Path) -> None:
    model = ScriptedModel([fenced("raise ValueError('boom')")] * 3)
    run = await coder(model, tmp_path, max_attempts=3).run("Do it.")
    assert run.attempts == 3
    assert run.error == "code failed after 3 attempts: ValueError: boom"
    assert run.output == ""
    assert run.artifacts["exit_code"] == 1
    assert len(model.calls) == 3


async def test_tests_in_the_instruction_judge_the_code_and_drive_the_repair(tmp_path: Path) -> None:
    wrong = "def add(a, b):\n    return a * b\n\nprint('ready')"
    assert run_with_tests(wrong, None).ok  # it runs fine on its own
    model = ScriptedModel([fenced(wrong), fenced("def add(a, b):\n    return a + b")])
    run = await coder(model, tmp_path).run(ADD_TASK)
    assert (run.error, run.attempts) == (None, 2)
    assert run.artifacts["tests"] == "passed"
    assert "assert add(-1, 1) == 0" in prompt_text(model, 0)  # the model sees the tests
    assert "AssertionError: assert add(-1, 1) == 0" in prompt_text(model, 1)


async def test_failing_tests_exhaust_the_attempts(tmp_path: Path) -> None:
    wrong = fenced("def add(a, b):\n    return a * b")
    run = await coder(ScriptedModel([wrong, wrong]), tmp_path, max_attempts=2).run(ADD_TASK)
    assert run.error == "tests failed after 2 attempts: AssertionError: assert add(-1, 1) == 0"
    assert run.artifacts["tests"] == "failed"


async def test_humaneval_style_check_function(tmp_path: Path) -> None:
    task = (
        "Write square(n).\n\n```python\ndef check(candidate):\n    assert candidate(3) == 9\n\n"
        "check(square)\n```"
    )
    model = ScriptedModel([fenced("def square(n):\n    return n * n")])
    run = await coder(model, tmp_path).run(task)
    assert (run.error, run.artifacts["tests"]) == (None, "passed")


async def test_a_reply_without_code_is_a_failed_attempt(tmp_path: Path) -> None:
    model = ScriptedModel(["I would rather not.", fenced("print('ok')")])
    run = await coder(model, tmp_path).run("Print ok.")
    assert (run.output, run.error, run.attempts) == ("ok", None, 2)
    assert "no ```python code block" in model.calls[1][0][-1]["content"]


async def test_never_any_code(tmp_path: Path) -> None:
    run = await coder(ScriptedModel(["No.", "Still no."]), tmp_path, max_attempts=2).run("Print ok.")
    assert run.error == "no code block after 2 attempts: the reply began 'Still no.'"
    assert run.artifacts["code"] is None


async def test_a_model_error_is_a_failed_attempt(tmp_path: Path) -> None:
    def broken(messages: list[dict[str, Any]], **_: Any) -> str:
        raise ConnectionError("endpoint down")

    run = await coder(ScriptedModel([broken, fenced("print(2)")]), tmp_path).run("Print 2.")
    assert (run.output, run.error, run.attempts) == ("2", None, 2)
    run = await coder(ScriptedModel([broken]), tmp_path, max_attempts=1).run("Print 2.")
    assert run.error == "model failed after 1 attempt: ConnectionError: endpoint down"


async def test_a_broken_limit_is_a_failure(tmp_path: Path) -> None:
    run = await coder(ScriptedModel([fenced("while True:\n    pass")]), tmp_path, max_attempts=1).run("Spin.")
    assert run.error is not None and run.error.startswith("code failed after 1 attempt: ")
    assert "limit" in run.error
    assert run.artifacts["exit_code"] is None


async def test_streams_the_reply_when_asked(tmp_path: Path) -> None:
    pieces: list[str] = []
    reply = fenced("print('streamed')")
    run = await coder(ScriptedModel([reply]), tmp_path, on_token=pieces.append).run("Print it.")
    assert run.output == "streamed"
    assert "".join(pieces) == reply


async def test_no_model_is_an_error(tmp_path: Path) -> None:
    run = await coder(None, tmp_path).run("Print it.")
    assert run.error == "coder 'coder' has no model"


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ("```python\nprint(1)\n```", "print(1)"),
        ("Sure: ```py\nx = 1\nprint(x)\n```", "x = 1\nprint(x)"),
        ("```\nprint(2)\n```\nor\n```python\nprint(3)\n```", "print(3)"),  # a python block wins
        ("```\nprint(2)\n```", "print(2)"),
        ("```python\nprint(4)\n", "print(4)"),  # cut off at max_tokens
        ("print(5)", "print(5)"),  # bare code
        ("hello", None),
        ("Sure, here it is.", None),
        ("```bash\nls\n```", None),
    ],
)
def test_extract_code(reply: str, code: str | None) -> None:
    assert extract_code(reply) == code


@pytest.mark.parametrize(
    ("instruction", "task", "tests"),
    [
        (
            ADD_TASK,
            "Write a function add(a, b) that adds two numbers.",
            "assert add(2, 2) == 4\nassert add(-1, 1) == 0\n",
        ),
        ("Write add. Tests: assert add(1, 2) == 3", "Write add.", "assert add(1, 2) == 3\n"),
        (
            "Write add.\n\n```python\nassert add(1, 2) == 3\n```\nThanks.",
            "Write add.\n\nThanks.",
            "assert add(1, 2) == 3\n",
        ),
        ("Write add.\nassert add(1, 2) == 3\nBe quick.", "Write add.\nBe quick.", "assert add(1, 2) == 3\n"),
        ("## Tests:\n```python\n    assert f() == 1\n```", "", "assert f() == 1\n"),
        ("Write add. Run the tests: they must pass.", "Write add. Run the tests: they must pass.", None),
        ("Fix this:\n```python\nprint(1)\n```", "Fix this:\n```python\nprint(1)\n```", None),
    ],
)
def test_split_tests(instruction: str, task: str, tests: str | None) -> None:
    assert split_tests(instruction) == (task, tests)


def test_tests_see_private_names_and_the_program_runs_as_main() -> None:
    code = "def _helper():\n    return 2\n\nif __name__ == '__main__':\n    print('main ran')"
    result = run_with_tests(code, "assert _helper() == 2\nprint('tests ran')\n")
    assert result.ok, result.summary()
    assert result.stdout == "main ran\ntests ran\n"


def test_describe_failure() -> None:
    assert describe_failure(run_with_tests("import sys\nsys.exit(3)", None)) == "exit code 3"
    assert (
        describe_failure(run_with_tests("x = 1", "assert x == 2, 'x is wrong'\n"))
        == "AssertionError: x is wrong"
    )
    assert describe_failure(run_with_tests("x = 1", "assert x == 2\n")) == "AssertionError: assert x == 2"


@pytest.mark.parametrize("exit_call", ["import sys\nsys.exit(0)", "import sys\nsys.exit()"])
def test_a_clean_exit_in_the_solution_does_not_skip_the_tests(exit_call: str) -> None:
    result = run_with_tests(f"def f():\n    return 1\n\n{exit_call}", "assert f() == 2\n")
    assert describe_failure(result) == "AssertionError: assert f() == 2"


def test_a_hard_exit_before_the_tests_finish_is_a_failure() -> None:
    result = run_with_tests("import os\nos._exit(0)", "assert True\n")
    assert result.exit_code == 0 and not result.ok
    assert describe_failure(result) == "the program exited before the tests finished"


def test_a_failing_exit_code_fails_the_tests() -> None:
    result = run_with_tests("import sys\nsys.exit(4)", "assert True\n")
    assert (result.ok, result.exit_code) == (False, 4)


async def test_a_sandbox_that_cannot_run_stops_the_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tessera.errors import MissingDependencyError

    async def no_sandbox(*args: Any, **kwargs: Any) -> Any:
        raise MissingDependencyError("the python sandbox needs prlimit: apt-get install util-linux")

    monkeypatch.setattr("tessera.tools.sandbox.arun_python", no_sandbox)
    model = ScriptedModel([fenced("print(1)")] * 3)
    run = await coder(model, tmp_path).run("Print 1.")
    assert run.error == (
        "code failed after 1 attempt: sandbox error: MissingDependencyError: the python sandbox needs prlimit: "
        "apt-get install util-linux"
    )
    assert len(model.calls) == 1
