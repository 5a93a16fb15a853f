"""HumanEval: 164 Python functions to complete, each judged by hidden tests.

A problem's program is its ``prompt`` (imports, signature, docstring) followed by a completion; its tests
are the problem's ``check`` function followed by ``check(<entry_point>)``. Both go through
:func:`tessera.agents.coder.arun_with_tests`, the sandbox and test runner the coder uses, so a score here
says how the coder's code is judged too. ``canonical`` (the reference solutions, 164/164) and ``empty``
(``pass`` bodies, 0/164) check the harness itself.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.agents.coder import arun_with_tests, describe_failure, extract_code
from tessera.errors import UserError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from tessera.config import SandboxConfig, TeamConfig

__all__ = [
    "DATA_ENV",
    "HumanEvalReport",
    "Outcome",
    "Problem",
    "Solver",
    "arun_humaneval",
    "canonical",
    "coder_of",
    "default_data_path",
    "empty",
    "load_problems",
    "model_solver",
    "program_for",
    "run_humaneval",
]

DATA_ENV = "TESSERA_HUMANEVAL"
"""Environment variable naming the data file (default: ``../shared/data/HumanEval.jsonl.gz``)."""

_FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")

ASK = (
    "Please provide a self-contained Python script that solves the following problem in a markdown code "
    "block:\n```python\n{prompt}```"
)
"""The user turn: the instruction of EvalPlus and the Qwen2.5-Coder report's harness, so a score here
compares with the published one. No system prompt is sent unless the specialist sets one (the model's chat
template then uses its own default): the coder's program-writing prompt (print the result) is for runs,
not for completing a function."""


@dataclass(frozen=True)
class Problem:
    """One HumanEval problem, as in the JSONL file."""

    task_id: str
    prompt: str
    canonical_solution: str
    test: str
    entry_point: str

    @property
    def tests(self) -> str:
        """The test script: the problem's ``check`` function, called on the entry point."""
        return f"{self.test.rstrip()}\n\n\ncheck({self.entry_point})\n"


Solver = Callable[[Problem], Awaitable[str]]
"""Gives a problem's completion: a function body (indented) or the whole function."""


@dataclass
class Outcome:
    """How one problem went."""

    task_id: str
    passed: bool
    reason: str | None = None
    """Why it failed: a solver error, a broken limit, or the failing exception or assert."""
    seconds: float = 0.0


@dataclass
class HumanEvalReport:
    """The score of one run over a set of problems."""

    mode: str
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        """Problems whose tests passed."""
        return sum(o.passed for o in self.outcomes)

    @property
    def total(self) -> int:
        """Problems run."""
        return len(self.outcomes)

    @property
    def pass_at_1(self) -> float:
        """``passed / total``: one sample per problem."""
        return self.passed / self.total if self.total else 0.0

    @property
    def failures(self) -> list[Outcome]:
        """The problems that failed, in file order."""
        return [o for o in self.outcomes if not o.passed]

    def to_json(self) -> dict[str, Any]:
        """``{"passed", "total", "pass_at_1", "mode", "seconds", "failures": [{"task_id", "reason"}]}``."""
        return {
            "passed": self.passed,
            "total": self.total,
            "pass_at_1": round(self.pass_at_1, 4),
            "mode": self.mode,
            "seconds": round(self.seconds, 2),
            "failures": [{"task_id": o.task_id, "reason": o.reason} for o in self.failures],
        }


def default_data_path() -> Path:
    """``$TESSERA_HUMANEVAL``, else ``shared/data/HumanEval.jsonl.gz`` beside the checkout."""
    import tessera

    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return Path(tessera.__file__).resolve().parents[2] / "shared" / "data" / "HumanEval.jsonl.gz"


def load_problems(path: Path | None = None, *, limit: int | None = None) -> list[Problem]:
    """Read problems from a ``.jsonl`` or ``.jsonl.gz`` file; :class:`UserError` naming the file if bad."""
    path = path or default_data_path()
    if not path.is_file():
        raise UserError(f"HumanEval data not found: {path} (use --data FILE or set ${DATA_ENV})")
    try:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {exc}") from None
    problems: list[Problem] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{number}: invalid JSON: {exc.msg}") from None
        missing = [key for key in _FIELDS if not isinstance(row, dict) or not isinstance(row.get(key), str)]
        if missing:
            raise UserError(f"{path}:{number}: missing or non-text field(s): {', '.join(missing)}")
        problems.append(Problem(**{key: row[key] for key in _FIELDS}))
        if limit is not None and len(problems) >= limit:
            break
    if not problems:
        raise UserError(f"{path}: no problems in the file")
    return problems


def program_for(problem: Problem, completion: str) -> str:
    """``prompt + completion``; a completion that starts unindented (a whole function) goes on a new line.

    Keeping the prompt keeps its imports and helper functions; a whole function redefines the prompt's
    docstring-only stub.
    """
    first = next((line for line in completion.splitlines() if line.strip()), "")
    if first[:1] in (" ", "\t"):
        return problem.prompt + completion
    return f"{problem.prompt.rstrip()}\n\n\n{completion.strip()}\n"


async def canonical(problem: Problem) -> str:
    """The reference solution: every problem passes."""
    return problem.canonical_solution


async def empty(problem: Problem) -> str:
    """A ``pass`` body: every problem fails."""
    return "    pass\n"


def model_solver(model: BaseChatModel, system_prompt: str | None = None) -> Solver:
    """A solver asking ``model`` once per problem (pass@1) and taking the first code block of its reply."""
    from langchain_core.messages import HumanMessage, SystemMessage

    async def solve(problem: Problem) -> str:
        system = [SystemMessage(content=system_prompt)] if system_prompt else []
        messages = [*system, HumanMessage(content=ASK.format(prompt=problem.prompt))]
        reply = await model.ainvoke(messages)
        text = reply.content if isinstance(reply.content, str) else str(reply.content)
        code = extract_code(text)
        if code is None:
            raise ValueError(f"no code block in the reply (it began {text[:60]!r})")
        return code

    return solve


def coder_of(config: TeamConfig) -> tuple[str, str]:
    """The name and model of the team's first ``kind: coder`` specialist; :class:`UserError` if none."""
    for name, spec in config.specialists.items():
        if spec.kind == "coder" and spec.model is not None:
            return name, spec.model
    kinds = ", ".join(f"{name} ({spec.kind})" for name, spec in config.specialists.items())
    raise UserError(f"team {config.name!r} has no specialist with kind 'coder' and a model (has: {kinds})")


async def arun_humaneval(
    problems: Sequence[Problem],
    solve: Solver,
    *,
    mode: str = "custom",
    limits: SandboxConfig | None = None,
    jobs: int = 3,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> HumanEvalReport:
    """Complete and judge ``problems``, ``jobs`` at a time; a solver error fails only its problem."""
    gate = asyncio.Semaphore(jobs)

    async def one(problem: Problem) -> Outcome:
        async with gate:
            started = time.monotonic()
            try:
                completion = await solve(problem)
            except Exception as exc:  # noqa: BLE001 - one bad completion fails one problem
                outcome = Outcome(problem.task_id, False, f"solver: {type(exc).__name__}: {exc}")
            else:
                result = await arun_with_tests(program_for(problem, completion), problem.tests, limits)
                outcome = Outcome(problem.task_id, result.ok, None if result.ok else describe_failure(result))
            outcome.seconds = time.monotonic() - started
        if on_outcome is not None:
            on_outcome(outcome)
        return outcome

    started = time.monotonic()
    outcomes = await asyncio.gather(*(one(p) for p in problems))
    return HumanEvalReport(mode=mode, outcomes=list(outcomes), seconds=time.monotonic() - started)


def run_humaneval(
    problems: Sequence[Problem],
    solve: Solver,
    *,
    mode: str = "custom",
    limits: SandboxConfig | None = None,
    jobs: int = 3,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> HumanEvalReport:
    """Synchronous :func:`arun_humaneval`."""
    from tessera._async import run_sync

    return run_sync(
        arun_humaneval(problems, solve, mode=mode, limits=limits, jobs=jobs, on_outcome=on_outcome)
    )
