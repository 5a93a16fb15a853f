"""The coder: writes a Python program, runs it in the sandbox, and repairs it until it works.

One attempt is a model reply, its first code block, and a sandbox run. A failed attempt (no code, an
error, a broken limit, a failing test) goes back to the model with the run's summary, up to the
specialist's ``max_attempts``. A final failure is returned as ``error``, so routing can escalate.

A subtask may carry tests (a ``Tests:`` section, a fenced block with ``assert``\\ s, or ``assert`` lines).
Then the code is judged by them: :func:`run_with_tests` runs the code as ``solution.py`` and the tests in
its namespace. The HumanEval harness (:mod:`tessera.bench.humaneval`) judges with the same runner.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import textwrap
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from tessera.agents.base import Specialist, SpecialistRun
from tessera.agents.specialist import stream_reply
from tessera.errors import SpecialistError
from tessera.tracing import record_span

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from tessera.config import SandboxConfig
    from tessera.tools.sandbox import SandboxResult

__all__ = [
    "CODER_PROMPT",
    "Coder",
    "arun_with_tests",
    "describe_failure",
    "extract_code",
    "run_with_tests",
    "split_tests",
    "test_script",
]

CODER_PROMPT = (
    "You are a careful Python programmer. Write one complete, runnable Python 3 program that does the "
    "task, using only the standard library. Reply with the whole program in a single ```python code "
    "block. The program must print its result with print(); it cannot read input."
)

_FENCE = re.compile(r"```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", re.DOTALL | re.MULTILINE)
_PYTHON_TAGS = {"", "python", "python3", "py", "py3"}
_TESTS_HEADER = re.compile(
    r"(?:^|(?<=\s))(?:#+[ \t]*)?(?:\*\*)?(?:unit[ \t]+)?tests?(?:[ \t]+cases)?(?:\*\*)?"
    r"[ \t]*:(?:\*\*)?[ \t]*",
    re.IGNORECASE | re.MULTILINE,
)
_ASSERT_LINE = re.compile(r"^[ \t]*assert\b.*(?:\n|\Z)", re.MULTILINE)
_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+)')
_MAX_REASON = 200
_TESTS_DONE = "tessera: tests ran to the end"


def extract_code(reply: str) -> str | None:
    """The program in a model's reply: the first ```python block, else the first plain ``` block.

    A reply with no fence counts as code when it parses as Python and does more than name a value. An
    unclosed fence (a reply cut at ``max_tokens``) runs to the end of the reply.
    """
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(reply)]
    for wanted in (_PYTHON_TAGS - {""}, {""}):
        for tag, body in blocks:
            if tag in wanted and body.strip():
                return body.strip("\n")
    if not blocks and _is_program(reply):
        return reply.strip("\n")
    return None


def split_tests(instruction: str) -> tuple[str, str | None]:
    """Split an instruction into the task and the tests it carries (None when it carries none).

    Tests are, by precedence: a section from a ``Tests:`` line to the end (its fenced blocks, or its
    lines); fenced blocks containing ``assert``; bare ``assert`` lines. Text that does not parse as Python
    with at least one ``assert`` is not a test and stays in the task.
    """
    for header in _TESTS_HEADER.finditer(instruction):
        section = instruction[header.end() :]
        fenced = [textwrap.dedent(m.group(2)).strip("\n") for m in _FENCE.finditer(section)]
        tests = "\n".join(fenced) if fenced else textwrap.dedent(section)
        if _has_asserts(tests):
            return instruction[: header.start()].strip(), tests.strip("\n") + "\n"
    blocks = [m for m in _FENCE.finditer(instruction) if _has_asserts(m.group(2))]
    if blocks:
        tests = "\n".join(textwrap.dedent(m.group(2)).strip("\n") for m in blocks)
        return _without(instruction, blocks), tests + "\n"
    outside = _FENCE.sub(lambda m: "\0" * len(m.group(0)), instruction)  # keep offsets, hide fences
    lines = [m for m in _ASSERT_LINE.finditer(outside) if _has_asserts(m.group(0).strip())]
    if lines:
        return _without(instruction, lines), "\n".join(m.group(0).strip() for m in lines) + "\n"
    return instruction, None


def test_script(tests: str) -> str:
    """The ``main.py`` that runs ``solution.py`` as the program, then ``tests`` in the same namespace.

    The solution runs as ``__main__``, so it behaves as it would on its own (printing its result), and
    every name it defines, private ones included, is visible to the tests. A ``sys.exit(0)`` in it does not
    skip the tests; a line on stderr after them proves they ran to the end. A HumanEval test is its
    ``check`` function followed by ``check(entry_point)``.
    """
    return (
        "import sys as _tessera_sys\n"
        "try:\n"
        "    exec(compile(open('solution.py', encoding='utf-8').read(), 'solution.py', 'exec'))\n"
        "except SystemExit as _tessera_exit:\n"
        "    if _tessera_exit.code not in (None, 0):\n"
        "        raise\n\n"
        f"{tests.rstrip()}\n\n"
        f"print({_TESTS_DONE!r}, file=_tessera_sys.stderr)\n"
    )


def run_with_tests(code: str, tests: str | None, limits: SandboxConfig | None = None) -> SandboxResult:
    """Run ``code`` in the sandbox; with ``tests``, run them against it (see :func:`test_script`)."""
    from tessera.tools.sandbox import run_python

    if tests is None:
        return run_python(code, limits)
    return _judged(run_python(test_script(tests), limits, files={"solution.py": code}))


async def arun_with_tests(code: str, tests: str | None, limits: SandboxConfig | None = None) -> SandboxResult:
    """Async :func:`run_with_tests`."""
    from tessera.tools.sandbox import arun_python

    if tests is None:
        return await arun_python(code, limits)
    return _judged(await arun_python(test_script(tests), limits, files={"solution.py": code}))


def _judged(result: SandboxResult) -> SandboxResult:
    """``result`` without the tests-done line; a clean exit without it (``os._exit(0)``) is a failure."""
    done = f"{_TESTS_DONE}\n"
    if done in result.stderr:
        return dataclasses.replace(result, stderr=result.stderr.replace(done, "", 1))
    if result.ok and not result.truncated:
        return dataclasses.replace(result, violation="the program exited before the tests finished")
    return result


def describe_failure(result: SandboxResult) -> str:
    """One line saying why a run failed: the broken limit, or the exception (with a failing assert's line)."""
    if result.violation:
        return _clip(result.violation)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if not lines:
        return f"exit code {result.exit_code}"
    last = lines[-1].strip()
    if last == "AssertionError":
        frames = [i for i, line in enumerate(lines) if _FRAME.match(line)]
        if frames and frames[-1] + 1 < len(lines) - 1:
            return _clip(f"AssertionError: {lines[frames[-1] + 1].strip()}")
    return _clip(last)


@dataclass
class _Attempt:
    """One attempt's code and run; ``failure`` (with its ``label``) is None when it passed."""

    code: str | None
    result: SandboxResult | None
    label: str = ""
    failure: str | None = None


class Coder(Specialist):
    """Writes code for the instruction, runs it in the sandbox (against its tests, if any), and repairs it.

    Output on success: the program's stdout, stripped (the code itself when it prints nothing).
    Artifacts: ``code``, ``exit_code``, ``stdout`` and ``tests`` (``"passed"``, ``"failed"`` or None).
    """

    manages_attempts = True

    async def run(self, instruction: str) -> SpecialistRun:
        """Ask, run, repair: up to ``max_attempts`` attempts; a final failure is returned as ``error``."""
        run = SpecialistRun(artifacts={"code": None, "exit_code": None, "stdout": None, "tests": None})
        model = self.ctx.model
        if model is None:
            run.error = f"coder {self.ctx.name!r} has no model"
            return run
        task, tests = split_tests(instruction)
        messages: list[BaseMessage] = [
            SystemMessage(content=self.ctx.spec.system_prompt or CODER_PROMPT),
            HumanMessage(content=_ask(task, tests)),
        ]
        for number in range(1, self.ctx.spec.max_attempts + 1):
            run.attempts = number
            try:
                reply = await self._ask_model(model, messages, run)
            except Exception as exc:  # noqa: BLE001 - a failing model is a failed attempt, not a crash
                run.error = f"model failed after {_attempts(number)}: {_clip(f'{type(exc).__name__}: {exc}')}"
                run.failure = exc
                continue
            attempt = await self._try(reply, tests, run)
            if attempt.failure is None and attempt.result is not None and attempt.code is not None:
                run.output = attempt.result.stdout.strip() or attempt.code
                run.error, run.failure = None, None
                return run
            run.error = f"{attempt.label} after {_attempts(number)}: {attempt.failure}"
            run.failure = SpecialistError(run.error)
            if attempt.code is not None and attempt.result is None:
                break  # the sandbox itself failed: another reply cannot help
            messages = [*messages[:2], *_repair(reply, attempt)]
        return run

    async def _ask_model(self, model: BaseChatModel, messages: list[BaseMessage], run: SpecialistRun) -> str:
        """The model's reply text (streamed to ``on_token`` when set), recording its span and tokens."""
        started = time.time()
        try:
            if self.ctx.on_token is not None:
                reply = await stream_reply(model, messages, self.ctx.on_token)
            else:
                reply = await model.ainvoke(messages)
        finally:
            record_span("call", started, time.time(), call="model")
        usage = reply.usage_metadata
        run.tokens += int(usage["output_tokens"]) if usage else 0
        return reply.content if isinstance(reply.content, str) else str(reply.content)

    async def _try(self, reply: str, tests: str | None, run: SpecialistRun) -> _Attempt:
        """Run the reply's code (against ``tests``), recording the sandbox span and the artifacts."""
        code = extract_code(reply)
        if code is None:
            return _Attempt(None, None, "no code block", f"the reply began {_clip(reply, 60)!r}")
        label = "code failed" if tests is None else "tests failed"
        started = time.time()
        try:
            result = await arun_with_tests(code, tests, self.ctx.team.tools.python)
        except Exception as exc:  # noqa: BLE001 - a sandbox that cannot start fails this attempt
            return _Attempt(code, None, label, _clip(f"sandbox error: {type(exc).__name__}: {exc}"))
        finally:
            record_span("call", started, time.time(), call="sandbox")
        run.artifacts.update(
            code=code,
            exit_code=result.exit_code,
            stdout=result.stdout,
            tests=None if tests is None else ("passed" if result.ok else "failed"),
        )
        return _Attempt(code, result, label, None if result.ok else describe_failure(result))


def _ask(task: str, tests: str | None) -> str:
    if tests is None:
        return task
    return (
        f"{task}\n\nYour code will be checked with these tests (define what they use; do not copy "
        f"them into your program):\n```python\n{tests.rstrip()}\n```"
    )


def _repair(reply: str, attempt: _Attempt) -> list[BaseMessage]:
    """The failed attempt as the model's turn, then the failure report asking for a fix."""
    if attempt.code is None:
        return [
            AIMessage(content=reply[:2000]),
            HumanMessage(
                content="Your reply had no ```python code block. Reply with the complete program in one "
                "```python block."
            ),
        ]
    report = attempt.result.summary() if attempt.result is not None else attempt.failure
    return [
        AIMessage(content=f"```python\n{attempt.code}\n```"),
        HumanMessage(
            content=f"That program failed: {attempt.failure}\n\n{report}\n\nFix it. Reply with the complete "
            "corrected program in one ```python block."
        ),
    ]


def _without(text: str, matches: list[re.Match[str]]) -> str:
    """``text`` with the matched spans cut out (and the blank lines they leave closed up)."""
    for match in reversed(matches):
        text = text[: match.start()] + text[match.end() :]
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _attempts(n: int) -> str:
    return f"{n} attempt" + ("s" if n > 1 else "")


def _is_program(text: str) -> bool:
    """Whether unfenced text parses as Python and does something (not just a bare name or constant)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return any(
        not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Name | ast.Constant))
        for node in tree.body
    )


def _has_asserts(code: str) -> bool:
    try:
        tree = ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(node, ast.Assert) for node in ast.walk(tree))


def _clip(text: str, limit: int = _MAX_REASON) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
