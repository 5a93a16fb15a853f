"""HumanEval: 164 Python functions to complete, each judged by hidden tests.

A problem's program is its ``prompt`` (imports, signature, docstring) followed by a completion; its tests
are the problem's ``check`` function followed by ``check(<entry_point>)``. Both go through
:func:`tessera.agents.coder.arun_with_tests`, the sandbox and test runner the coder uses, so a score here
says how the coder's code is judged too. ``canonical`` (the reference solutions, 164/164) and ``empty``
(``pass`` bodies, 0/164) check the harness itself.

A solver may return a :class:`Completion` instead of plain code: it then says how the code was made (time
in model calls per model, escalation, repairs, the docstring examples), and the report adds it up. The
team modes (one model, repair from the docstring's examples, the routed small-then-large team) are in
:mod:`tessera.bench._humaneval_modes`.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.agents.coder import arun_with_tests, describe_failure, extract_code
from tessera.errors import UserError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

    from tessera.config import SandboxConfig, TeamConfig

__all__ = [
    "DATA_ENV",
    "HumanEvalReport",
    "Outcome",
    "Completion",
    "Problem",
    "Solver",
    "arun_humaneval",
    "ask_messages",
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


@dataclass
class Completion:
    """A solver's answer with how it was made; ``code`` is None when no reply had any."""

    code: str | None
    generation_s: dict[str, float] = field(default_factory=dict)
    """Seconds spent in model calls, per model name (wall time around each call, summed)."""
    calls: dict[str, int] = field(default_factory=dict)
    """Model calls, per model name."""
    reply_chars: dict[str, int] = field(default_factory=dict)
    """Characters the replies had, per model name: how much was generated, whatever the machine's load."""
    model: str | None = None
    """The model whose code is ``code``."""
    escalated: bool = False
    """The first model's code failed its check and a larger model was asked."""
    repairs: int = 0
    """Repair requests sent (a failure report asking for a corrected function)."""
    examples: int = 0
    """Docstring examples the problem shows (0: none could be parsed)."""
    examples_passed: bool | None = None
    """Whether ``code`` passed its check (examples, or running at all); None when not checked."""
    note: str | None = None
    """Why there is no code (the last reply's problem, or a model error)."""

    def spent(self, model: str, seconds: float, reply: str | None) -> None:
        """Count one model call of ``seconds`` that gave ``reply`` (None: it failed)."""
        self.generation_s[model] = self.generation_s.get(model, 0.0) + seconds
        self.calls[model] = self.calls.get(model, 0) + 1
        self.reply_chars[model] = self.reply_chars.get(model, 0) + len(reply or "")


Solver = Callable[[Problem], Awaitable[str | Completion]]
"""Gives a problem's completion: a function body (indented) or the whole function, or a
:class:`Completion` carrying one."""


@dataclass
class Outcome:
    """How one problem went."""

    task_id: str
    passed: bool
    reason: str | None = None
    """Why it failed: a solver error, a broken limit, or the failing exception or assert."""
    seconds: float = 0.0
    completion: Completion | None = None
    """How a model solver made the code (None for plain solvers)."""


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

    @property
    def completions(self) -> list[Completion]:
        """The completions that model solvers reported, in file order."""
        return [o.completion for o in self.outcomes if o.completion is not None]

    @property
    def generation_s_by_model(self) -> dict[str, float]:
        """Seconds in model calls per model, summed over the problems."""
        total: dict[str, float] = {}
        for completion in self.completions:
            for model, seconds in completion.generation_s.items():
                total[model] = total.get(model, 0.0) + seconds
        return total

    @property
    def generation_s(self) -> float:
        """Seconds in model calls, all models together."""
        return sum(self.generation_s_by_model.values())

    def to_json(self) -> dict[str, Any]:
        """``{"passed", "total", "pass_at_1", "mode", "seconds", "failures": [{"task_id", "reason"}]}``.

        ``seconds`` is the wall time of the run. When the solver reported :class:`Completion`\\ s, the
        report adds ``generation_s`` (time in model calls), ``generation_s_by_model``, ``model_calls``,
        ``reply_chars_by_model``,
        ``escalated``, ``repaired`` (problems with at least one repair request), ``repairs`` (requests),
        ``with_examples`` (problems whose docstring examples could be parsed), ``checked`` and
        ``passed_check`` (final code checked against its examples, and passing), and ``problems``: one row
        per problem.
        """
        report: dict[str, Any] = {
            "passed": self.passed,
            "total": self.total,
            "pass_at_1": round(self.pass_at_1, 4),
            "mode": self.mode,
            "seconds": round(self.seconds, 2),
            "failures": [{"task_id": o.task_id, "reason": o.reason} for o in self.failures],
        }
        done = self.completions
        if not done:
            return report
        report.update(
            generation_s=round(self.generation_s, 2),
            generation_s_by_model={m: round(s, 2) for m, s in self.generation_s_by_model.items()},
            model_calls=_per_model(c.calls for c in done),
            reply_chars_by_model=_per_model(c.reply_chars for c in done),
            escalated=sum(c.escalated for c in done),
            repaired=sum(c.repairs > 0 for c in done),
            repairs=sum(c.repairs for c in done),
            with_examples=sum(c.examples > 0 for c in done),
            checked=sum(c.examples_passed is not None for c in done),
            passed_check=sum(c.examples_passed is True for c in done),
            problems=[_problem_row(o) for o in self.outcomes],
        )
        return report


def _per_model(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for count in counts:
        for model, n in count.items():
            total[model] = total.get(model, 0) + n
    return total


def _problem_row(outcome: Outcome) -> dict[str, Any]:
    """One problem of a model run: passed, which model's code, escalation, repairs and seconds."""
    row: dict[str, Any] = {"task_id": outcome.task_id, "passed": outcome.passed}
    completion = outcome.completion
    if completion is not None:
        row.update(
            model=completion.model,
            escalated=completion.escalated,
            repairs=completion.repairs,
            examples=completion.examples,
            examples_passed=completion.examples_passed,
            generation_s={m: round(s, 2) for m, s in completion.generation_s.items()},
            reply_chars=completion.reply_chars,
        )
    return row


def default_data_path() -> Path:
    """``$TESSERA_HUMANEVAL``, else ``shared/data/HumanEval.jsonl.gz`` beside the checkout."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "HumanEval.jsonl.gz"


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


def ask_messages(problem: Problem, system_prompt: str | None = None) -> list[BaseMessage]:
    """The first request for ``problem``: the system prompt (if any), then :data:`ASK` with the prompt."""
    from langchain_core.messages import HumanMessage, SystemMessage

    system = [SystemMessage(content=system_prompt)] if system_prompt else []
    return [*system, HumanMessage(content=ASK.format(prompt=problem.prompt))]


def model_solver(model: BaseChatModel, system_prompt: str | None = None) -> Solver:
    """A solver asking ``model`` once per problem (pass@1) and taking the first code block of its reply."""

    async def solve(problem: Problem) -> str:
        reply = await model.ainvoke(ask_messages(problem, system_prompt))
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
            made: Completion | None = None
            try:
                answer = await solve(problem)
            except Exception as exc:  # noqa: BLE001 - one bad completion fails one problem
                outcome = Outcome(problem.task_id, False, f"solver: {type(exc).__name__}: {exc}")
            else:
                made = answer if isinstance(answer, Completion) else None
                code = answer.code if isinstance(answer, Completion) else answer
                if code is None:
                    note = made.note if made is not None else None
                    outcome = Outcome(problem.task_id, False, f"solver: {note or 'no code'}")
                else:
                    result = await arun_with_tests(program_for(problem, code), problem.tests, limits)
                    reason = None if result.ok else describe_failure(result)
                    outcome = Outcome(problem.task_id, result.ok, reason)
            outcome.completion = made
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
