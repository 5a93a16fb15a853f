"""HumanEval with a team's models: one model alone, a model repairing from the docstring's examples, routing.

- **single** (:func:`single_solver`): one model answers once (pass@1); nothing is checked before the hidden
  tests judge it.
- **repair** (:func:`repair_solver`): the model's code is checked in the sandbox against the examples its
  prompt shows (:mod:`tessera.bench._humaneval_examples`; never the hidden tests). While it fails them
  (or the reply has no code, or the program does not run) the failure goes back to the model, asking for a
  corrected function, up to ``repairs`` times. The last reply that had code is what the hidden tests judge.
- **routed** (:func:`routed_solver`): the small model answers first; its code stands when it passes the
  check, else the problem escalates to the large model, asked afresh, which may repair as above. A
  problem whose docstring shows no parsable example is checked by running the program alone: the small
  model's code stands if it compiles and runs (defines the function without raising).

Time in model calls is the wall time around each call, summed per model. With more than one problem at a
time, a call that waits for a busy model counts its wait too: measure with ``jobs=1``.

By default a reply is read as a stream and generation stops once its first Python (or untagged) code
block closes (``stop_at_fence``): the explanation a model writes after the code is never generated. At
temperature 0 the code is the same either way, except when an untagged block comes before a ``python``
one (the full reply's code would be the later block).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tessera.agents.coder import arun_with_tests, extract_code
from tessera.bench._humaneval_examples import (
    Example,
    ExampleCheck,
    check_script,
    extract_examples,
    read_check,
)
from tessera.bench.humaneval import Completion, Problem, Solver, ask_messages, coder_of, program_for
from tessera.errors import UserError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

    from tessera.config import SandboxConfig, TeamConfig
    from tessera.models.pool import ModelPool

__all__ = ["Settings", "first_block_end", "repair_solver", "routed_solver", "single_solver", "team_solver"]

_OPEN = re.compile(r"^[ \t]*```[ \t]*([\w+.-]*)[^\n]*\n", re.MULTILINE)
_CLOSE = re.compile(r"\n[ \t]*```")
_PYTHON_TAGS = {"", "python", "python3", "py", "py3"}
_NO_CODE = "Your reply had no ```python code block. Reply with the complete function in one ```python block."
_FIX = "Fix the function. Reply with the complete corrected function in one ```python block."


@dataclass(frozen=True)
class Settings:
    """What every solver here shares: sandbox limits, an optional system prompt, and stop-at-fence."""

    limits: SandboxConfig | None = None
    system_prompt: str | None = None
    stop_at_fence: bool = True


def single_solver(name: str, model: BaseChatModel, settings: Settings | None = None) -> Solver:
    """``model`` (called ``name`` in the report) answers each problem once."""
    return repair_solver(name, model, 0, settings, check=False)


def repair_solver(
    name: str, model: BaseChatModel, repairs: int, settings: Settings | None = None, *, check: bool = True
) -> Solver:
    """``model`` answers, then repairs from the docstring's examples up to ``repairs`` times."""
    settings = settings or Settings()

    async def solve(problem: Problem) -> Completion:
        examples = extract_examples(problem.prompt, problem.entry_point)
        made = Completion(None, model=name, examples=len(examples))
        await _answer(problem, examples, name, model, repairs if check else None, made, settings)
        return made

    return solve


def routed_solver(
    small: tuple[str, BaseChatModel],
    large: tuple[str, BaseChatModel],
    repairs: int = 0,
    settings: Settings | None = None,
) -> Solver:
    """The small model, then the large one (repairing up to ``repairs`` times) if its code fails the check."""
    settings = settings or Settings()

    async def solve(problem: Problem) -> Completion:
        examples = extract_examples(problem.prompt, problem.entry_point)
        made = Completion(None, model=small[0], examples=len(examples))
        if await _answer(problem, examples, *small, 0, made, settings):
            return made
        made.escalated = True
        await _answer(problem, examples, *large, repairs, made, settings)
        return made

    return solve


def team_solver(
    config: TeamConfig,
    pool: ModelPool,
    *,
    model: str | None = None,
    repairs: int = 0,
    routed: bool = False,
    small: str | None = None,
    large: str | None = None,
    stop_at_fence: bool = True,
) -> tuple[str, Solver]:
    """The mode's name and solver for ``tessera bench humaneval --team`` and its options.

    Default: the team's coder specialist's model (with its system prompt). ``model``: that model alone.
    ``routed``: ``small`` then ``large`` (default: the first and last routing tiers, else the model named
    ``small`` and the coder's model). ``repairs`` applies to the answering model (routed: the large one).
    The models the mode uses are loaded here, so no model call's time includes loading weights.
    """
    spec_name, coder_model = coder_of(config)
    settings = Settings(config.tools.python, config.specialists[spec_name].system_prompt, stop_at_fence)
    suffix = (f"+repair{repairs}" if repairs else "") + ("" if stop_at_fence else ",full-reply")
    if routed:
        tiers = config.routing.tiers
        small = _known(config, small or (tiers[0] if len(tiers) > 1 else "small"), "--small")
        large = _known(config, large or (tiers[-1] if len(tiers) > 1 else coder_model), "--large")
        solver = routed_solver((small, pool.load(small)), (large, pool.load(large)), repairs, settings)
        return f"routed:{small}->{large}{suffix}", solver
    if model is not None:
        model = _known(config, model, "--model")
        alone = Settings(settings.limits, None, stop_at_fence)
        return f"model:{model}{suffix}", repair_solver(
            model, pool.load(model), repairs, alone, check=repairs > 0
        )
    solver = repair_solver(coder_model, pool.load(coder_model), repairs, settings, check=repairs > 0)
    return f"team:{spec_name}/{coder_model}{suffix}", solver


def first_block_end(text: str) -> int | None:
    """Where the first closed Python (or untagged) code block of ``text`` ends; None while there is none."""
    at = 0
    while (opening := _OPEN.search(text, at)) is not None:
        closing = _CLOSE.search(text, opening.end() - 1)
        if closing is None:
            return None
        if opening.group(1).lower() in _PYTHON_TAGS:
            return closing.end()
        at = closing.end()
    return None


async def _answer(
    problem: Problem,
    examples: list[Example],
    name: str,
    model: BaseChatModel,
    repairs: int | None,
    made: Completion,
    settings: Settings,
) -> bool:
    """Ask ``model``; with ``repairs`` (not None) check the code and repair it. True when the check passed.

    ``made`` gathers the time, calls and repairs, and takes the last code ``model`` wrote (with its check);
    when ``model`` writes none, the code ``made`` already holds (an escalated problem's small answer) stays.
    """
    base = ask_messages(problem, settings.system_prompt)
    messages = base
    for round_ in range((repairs or 0) + 1):
        reply = await _call(name, model, messages, made, settings.stop_at_fence)
        if reply is None:
            return False
        code = extract_code(reply)
        if code is not None:
            made.code, made.model, made.note = code, name, None
        elif made.code is None:
            made.note = f"no code block in the reply (it began {reply[:60]!r})"
        if repairs is None:
            return code is not None
        check = await _check(problem, code, examples, settings.limits)
        if code is not None:
            made.examples_passed = check.passed
        if check.passed or round_ == repairs:
            return check.passed
        made.repairs += 1
        messages = [*base, *_repair_turns(reply, code, check)]
    return False


async def _call(
    name: str, model: BaseChatModel, messages: list[BaseMessage], made: Completion, stop_at_fence: bool
) -> str | None:
    """The reply's text (None if the model failed: ``made.note`` says how), timing the call into ``made``."""
    started = time.monotonic()
    reply: str | None = None
    try:
        reply = await (_first_block(model, messages) if stop_at_fence else _whole(model, messages))
    except Exception as exc:  # noqa: BLE001 - a failing model fails this problem only
        made.note = f"model {name!r} failed: {type(exc).__name__}: {exc}"
    finally:
        made.spent(name, time.monotonic() - started, reply)
    return reply


async def _whole(model: BaseChatModel, messages: list[BaseMessage]) -> str:
    reply = await model.ainvoke(messages)
    return reply.content if isinstance(reply.content, str) else str(reply.content)


async def _first_block(model: BaseChatModel, messages: list[BaseMessage]) -> str:
    """The reply streamed up to the end of its first code block; closing the stream stops the generation."""
    text = ""
    stream = model.astream(messages)
    try:
        async for chunk in stream:
            text += chunk.content if isinstance(chunk.content, str) else str(chunk.content)
            end = first_block_end(text)
            if end is not None:
                return text[:end]
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()
    return text


async def _check(
    problem: Problem, code: str | None, examples: list[Example], limits: SandboxConfig | None
) -> ExampleCheck:
    """Run ``code`` against the docstring's examples in the sandbox (with none: just run it)."""
    if code is None:
        return ExampleCheck(len(examples), [], "the reply had no ```python code block")
    try:
        result = await arun_with_tests(program_for(problem, code), check_script(examples), limits)
    except Exception as exc:  # noqa: BLE001 - a sandbox that cannot start fails the check
        return ExampleCheck(len(examples), [], f"sandbox error: {type(exc).__name__}: {exc}")
    return read_check(examples, result)


def _repair_turns(reply: str, code: str | None, check: ExampleCheck) -> list[BaseMessage]:
    """The failed answer as the model's turn, then what failed and the request for a corrected function."""
    from langchain_core.messages import AIMessage, HumanMessage

    if code is None:
        return [AIMessage(content=reply[:2000]), HumanMessage(content=_NO_CODE)]
    return [AIMessage(content=f"```python\n{code}\n```"), HumanMessage(content=f"{check.report()}\n\n{_FIX}")]


def _known(config: TeamConfig, name: str, option: str) -> str:
    if name not in config.models:
        raise UserError(f"{option}: unknown model {name!r} (known: {', '.join(config.models)})")
    return name
