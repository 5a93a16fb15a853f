"""What ``tessera run`` and ``tessera resume`` print, and how they ask about a plan."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tessera._progress import LiveLine
from tessera.cli._common import echo, output_stream

if TYPE_CHECKING:
    from tessera.config import TeamConfig
    from tessera.events import Event
    from tessera.types import Approval, Plan, RunResult, SubtaskResult

__all__ = ["approver", "checked_plan", "finish", "follow", "read_plan", "resume_hint"]


def _echo_token(token: str) -> None:
    echo(token, nl=False)


def follow(events: Iterator[Event]) -> RunResult:
    """Print the answer as it streams (stdout) and a line per finished subtask (stderr).

    On a terminal, a status line under those lines shows what runs now (see :mod:`tessera.cli._live`).
    """
    from tessera.cli._live import RunLine, live_wanted
    from tessera.events import AnswerToken, Done, PlanReady, Replan, SubtaskFinished

    result = None
    streamed = False
    stderr = output_stream(err=True) or sys.stderr
    live = RunLine(stderr) if live_wanted(output_stream() or sys.stdout, stderr) else None
    try:
        for event in events:
            line = None
            if isinstance(event, PlanReady):
                steps = ", ".join(f"{s.id}:{s.specialist}" for s in event.plan.subtasks)
                line = f"  plan: {steps}" + (" (fallback)" if event.fallback else "")
            elif isinstance(event, SubtaskFinished):
                line = _subtask_line(event.result)
            elif isinstance(event, Replan):
                line = f"  replan {event.replans}: {event.reason}"
            if live is not None:
                live.apply(event)
            if line is not None:
                with live.line.hidden() if live is not None else nullcontext():
                    echo(line, err=True)
            elif isinstance(event, AnswerToken):
                streamed = streamed or bool(event.text)
                _echo_token(event.text)
            elif isinstance(event, Done):
                result = event.result
    finally:
        if live is not None:
            live.stop()
    assert result is not None
    if result.answer and not streamed:  # a run read back from its checkpoint streams nothing
        _echo_token(result.answer)
    if result.answer:
        echo("")
    return result


def _subtask_line(sub: SubtaskResult) -> str:
    took = f"{sub.ended - sub.started:.2f}s" if sub.started and sub.ended else "-"
    extra = f"  {sub.error}" if sub.error else ""
    if sub.route:
        extra += f"  [route: {sub.route}" + "".join(f"; {e}" for e in sub.escalations) + "]"
    return f"  {sub.id} {sub.specialist:<12} {sub.model or '-':<10} {sub.status:<8} {took}{extra}"


EXIT_CODES = {"done": 0, "failed": 1, "rejected": 1, "interrupted": 1, "partial": 3, "awaiting_approval": 4}
"""The exit code of ``tessera run`` and ``tessera resume`` for each run status (usage and config: 2)."""


def finish(result: RunResult, as_json: bool, *, checkpointed: bool = True) -> None:
    """Print the outcome (the RunResult with --json) and exit with the status's code."""
    if as_json:
        echo(json.dumps(result.to_json(), indent=2))
    elif result.status == "awaiting_approval" and result.plan is not None:
        echo(json.dumps(result.plan.model_dump(mode="json"), indent=2), err=True)
        echo(resume_hint(result.thread_id), err=True)
    else:
        timings = result.timings
        echo(
            f"  {result.status}: total {timings.total_s:.2f}s, overhead {timings.overhead_s:.3f}s"
            + (f", thread {result.thread_id}" if checkpointed else ""),
            err=True,
        )
        summary = result.failure_summary()
        if summary:
            echo(f"  {summary}", err=True)
    if not as_json:  # whatever the outcome: why a plan fell back, what was recalled, ...
        for note in result.notes:
            echo(f"  note: {note}", err=True)
    code = EXIT_CODES.get(result.status, 0)
    if code:
        sys.exit(code)


def resume_hint(thread_id: str | None) -> str:
    """How to decide later on the plan a paused run waits on."""
    return f"plan awaits approval: tessera resume {thread_id} --accept | --reject REASON | --edit FILE"


def approver(
    yes: bool, as_json: bool, config: TeamConfig | None = None, thread_id: str | None = None
) -> Callable[[Plan], Approval] | None:
    """Accept everything with --yes; ask on a terminal; otherwise None (the run pauses).

    On a terminal, an edit that cannot run (bad JSON, or a plan ``config``'s team cannot run) is shown with
    its problem and the question is asked again, reopening the edited text; leaving the question (Ctrl-C,
    Ctrl-D) says how to resume ``thread_id``.
    """
    from tessera.types import Approval

    if yes:
        return lambda plan: Approval.accept()
    if as_json or not sys.stdin.isatty():
        return None
    return lambda plan: _ask_about_plan(plan, config, thread_id)


_ASKING: list[str] = []
"""The thread whose plan question is open: Ctrl-C lands on the main thread, not the asking one."""


def interrupted_hint() -> str | None:
    """What to print when Ctrl-C stops the CLI: how to resume a plan whose question was open, or None."""
    return resume_hint(_ASKING[-1]) if _ASKING else None


def _ask_about_plan(plan: Plan, config: TeamConfig | None, thread_id: str | None) -> Approval:
    live = LiveLine.current  # off the screen while the question is on it
    if thread_id is not None:
        _ASKING.append(thread_id)
    try:
        with live.hidden() if live is not None else nullcontext(), _resume_hint_on_abort(thread_id):
            echo("Proposed plan:", err=True)
            for sub in plan.subtasks:
                after = f" (after {', '.join(sub.depends_on)})" if sub.depends_on else ""
                echo(f"  {sub.id} [{sub.specialist}]{after}: {sub.instruction}", err=True)
            text = json.dumps(plan.model_dump(mode="json"), indent=2)
            return _ask(text, text, config)
    finally:
        if thread_id is not None:
            _ASKING.remove(thread_id)


@contextmanager
def _resume_hint_on_abort(thread_id: str | None) -> Iterator[None]:
    """Leaving the plan question (Ctrl-D) says how to decide on the plan later."""
    try:
        yield
    except click.Abort:
        if thread_id is not None:
            echo("", err=True)
            echo(resume_hint(thread_id), err=True)
        raise


def _ask(text: str, proposed: str, config: TeamConfig | None) -> Approval:
    """Accept, reject or edit until an edit can run; editing again reopens the last edit."""
    from tessera.errors import UserError
    from tessera.types import Approval

    while True:
        choice = click.prompt(
            "accept, edit or reject?", type=click.Choice(["a", "e", "r"]), default="a", err=True
        )
        if choice == "a":
            return Approval.accept()
        if choice == "r":
            return Approval.reject(click.prompt("reason", default="", err=True))
        try:
            edited = click.edit(text, extension=".json")
        except click.ClickException as exc:  # no usable editor
            echo(exc.format_message(), err=True)
            continue
        if edited is None and text == proposed:
            return Approval.accept()
        text = text if edited is None else edited
        try:
            return Approval.edit(checked_plan(text, "the edited plan", config))
        except UserError as exc:
            echo(f"{exc}\n(e edits it again; a runs the proposed plan)", err=True)


def read_plan(path: Path) -> Plan:
    return _parse_plan(path.read_text(encoding="utf-8"), str(path))


def checked_plan(text: str, where: str, config: TeamConfig | None) -> Plan:
    """The plan in ``text``, checked as a run would check it (against ``config``'s team when given).

    Raises :class:`~tessera.errors.UserError` with one line: the first JSON problem, or every reason the
    team cannot run the plan.
    """
    from tessera.agents.planner import validate_plan
    from tessera.errors import UserError

    plan = _parse_plan(text, where)
    if config is not None:
        problems = validate_plan(plan, config.specialists, config.planner.max_subtasks)
        if problems:
            raise UserError(f"{where} cannot run: " + "; ".join(problems))
    return plan


def _parse_plan(text: str, where: str) -> Plan:
    from pydantic import ValidationError

    from tessera.errors import UserError
    from tessera.types import Plan

    try:
        return Plan.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "plan"
        raise UserError(f"{where}: {loc}: {first['msg']}") from None
