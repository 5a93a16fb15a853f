"""The team-mode options of ``tessera bench humaneval`` (one model, repair, routed) and their run.

Kept apart from :mod:`tessera.cli` so that the command there stays a few lines; only click is imported
here at start-up (the models and the sandbox load when a run starts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from tessera.bench.humaneval import HumanEvalReport, Problem

__all__ = ["check_modes", "echo_generation", "mode_options", "run_team_modes"]

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS = (
    click.option("--model", "model", default=None, help="With --team: this model of the team alone."),
    click.option(
        "--repair",
        type=click.IntRange(0, 10),
        default=0,
        show_default=True,
        help="With --team: repair up to N times from the docstring's examples (routed: the large model).",
    ),
    click.option("--routed", is_flag=True, help="With --team: the small model; the large one if it fails."),
    click.option("--small", default=None, help="Routed: first model.  [default: first tier, or 'small']"),
    click.option("--large", default=None, help="Routed: escalation.  [default: last tier, or the coder's]"),
    click.option(
        "--full-reply", is_flag=True, help="Generate whole replies, not up to the first code block."
    ),
)


def mode_options(command: F) -> F:
    """Add ``--model``, ``--repair``, ``--routed``, ``--small``, ``--large`` and ``--full-reply``."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def check_modes(team_file: Path | None, modes: dict[str, Any]) -> None:
    """:class:`click.UsageError` for a mode option without ``--team``, or options that do not go together."""
    given = [f"--{name.replace('_', '-')}" for name, value in modes.items() if value]
    if team_file is None and given:
        raise click.UsageError(f"{', '.join(given)} need(s) --team FILE")
    if modes["model"] is not None and modes["routed"]:
        raise click.UsageError("choose --model NAME or --routed, not both")
    if (modes["small"] or modes["large"]) and not modes["routed"]:
        raise click.UsageError("--small and --large go with --routed")


def run_team_modes(
    team_file: Path, problems: Sequence[Problem], jobs: int, modes: dict[str, Any]
) -> HumanEvalReport:
    """Run ``problems`` on the team's models in the mode ``modes`` chooses (default: its coder, once)."""
    from tessera.bench._humaneval_modes import team_solver
    from tessera.bench.humaneval import run_humaneval
    from tessera.cli._common import load_team_file
    from tessera.models.pool import ModelPool

    config = load_team_file(team_file)
    with ModelPool.from_team(config) as pool:
        mode, solve = team_solver(
            config,
            pool,
            model=modes["model"],
            repairs=modes["repair"],
            routed=modes["routed"],
            small=modes["small"],
            large=modes["large"],
            stop_at_fence=not modes["full_reply"],
        )
        return run_humaneval(problems, solve, mode=mode, limits=config.tools.python, jobs=jobs)


def echo_generation(report: HumanEvalReport) -> None:
    """One line of the time in model calls (per model), escalations and repairs, for a model run."""
    summary = report.to_json()
    if "generation_s" not in summary:
        return
    from tessera.cli._common import echo

    by_model = ", ".join(f"{m} {s:.1f}s" for m, s in summary["generation_s_by_model"].items())
    echo(
        f"  generation {summary['generation_s']:.1f}s ({by_model}); escalated {summary['escalated']},"
        f" repaired {summary['repaired']} ({summary['repairs']} requests)"
    )
