"""``tessera bench tasks``: the team on a suite of checkable tasks, optionally against a ReAct agent."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from tessera.cli._common import echo, json_option, load_team_file, team_option

__all__ = ["bench_tasks"]


@click.command("tasks")
@team_option
@click.option(
    "--baseline",
    type=click.Choice(["react"]),
    default=None,
    help="Also run each task through LangGraph's prebuilt ReAct agent on the planner's model, same tools.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Run only the first N tasks.")
@click.option("--only", multiple=True, help="Run only these task ids (repeatable).")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the knowledge base, images and state go.  [default: a new temporary folder]",
)
@json_option
def bench_tasks(
    team_file: Path,
    baseline: str | None,
    limit: int | None,
    only: tuple[str, ...],
    workdir: Path | None,
    as_json: bool,
) -> None:
    """Accuracy, first-try plans, specialist choice, planning and run time on 32 checkable tasks."""
    from tessera.bench._task_suite import SUITE
    from tessera.bench.tasks import TaskOutcome, run_tasks_bench

    unknown = sorted(set(only) - {t.id for t in SUITE})
    if unknown:
        raise click.UsageError(f"unknown task id(s): {', '.join(unknown)} (see tessera/bench/_task_suite.py)")
    config = load_team_file(team_file)

    def progress(outcome: TaskOutcome) -> None:
        mark = "ok  " if outcome.correct else "FAIL"
        planning = f" planning {outcome.planning_s:.1f}s" if outcome.planning_s is not None else ""
        why = f"  ({outcome.why or outcome.error})" if not outcome.correct else ""
        echo(f"{mark} {outcome.system:<5} {outcome.id:<22} {outcome.seconds:6.1f}s{planning}{why}", err=True)

    with tempfile.TemporaryDirectory(prefix="tessera-bench-tasks-") as scratch:
        report = run_tasks_bench(
            config, workdir or Path(scratch), baseline=baseline, limit=limit, only=only, on_outcome=progress
        )
    if as_json:
        echo(json.dumps(report, indent=2))
        return
    for name, row in report["systems"].items():
        echo(
            f"{name}: {row['correct']}/{row['tasks']} correct ({row['accuracy']:.0%}), median run "
            f"{row['median_run_s']:.1f}s, median planning {row['median_planning_s'] or 0:.1f}s, "
            f"{row['tokens_per_run']:.0f} tokens/run"
            + (
                f", plans valid first try {row['plans_valid_first_try']:.0%}, right specialists "
                f"{row['right_specialists']:.0%}"
                if row.get("plans_valid_first_try") is not None
                else ""
            )
        )
    if "team_vs_react" in report:
        ratio = report["team_vs_react"]
        echo(
            f"team vs react: accuracy {ratio['accuracy_difference']:+.0%}, "
            f"median run x{ratio['median_run_ratio']}"
        )
