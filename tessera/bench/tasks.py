"""``tessera bench tasks``: the team on a suite of checkable tasks, against one model with the same tools.

The suite (:mod:`tessera.bench._task_suite`: 32 tasks for the coder, the retriever, OCR, TTS and the
general specialist, one to three and more steps, parallel and chained) runs on a team in a fresh state dir:
the benchmark writes and ingests its knowledge base and renders its images there, and long-term memory is
off, so no task sees another's. Reported per system:

- accuracy (the answer passes the task's check; a TTS task needs a WAV file that exists);
- plans valid at the first try (no rejected plan, no fallback) and subtasks given to the specialists a
  person would choose (the plan's specialist kinds equal the task's);
- median planning time and median run time, and generated tokens per run.

``--baseline react`` runs every task also through LangGraph's prebuilt ReAct agent on the planner's model
with the same tools (python in the sandbox, ocr, tts, knowledge), right after the team's run of the same
task, so both see the same machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.bench._task_suite import DOCS, IMAGES, SUITE, SuiteTask, TaskOutcome, check_answer

if TYPE_CHECKING:
    from tessera.config import TeamConfig
    from tessera.models.pool import ModelPool
    from tessera.team import Team
    from tessera.types import RunResult

__all__ = ["TaskOutcome", "prepare", "run_tasks_bench", "summarize"]

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def prepare(config: TeamConfig, workdir: Path) -> TeamConfig:
    """The team config for the benchmark: a fresh state dir with the suite's knowledge base and images."""
    from tessera.memory.ingest import ingest
    from tessera.memory.knowledge import KnowledgeBase

    workdir.mkdir(parents=True, exist_ok=True)
    docs = workdir / "kb"
    for name, text in DOCS.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text, encoding="utf-8")
    _render_images(workdir / "images")
    memory = config.memory.model_copy(update={"long_term": False})
    prepared = config.model_copy(update={"state_dir": workdir / "state", "memory": memory})
    with KnowledgeBase.for_team(prepared, writer=True) as kb:
        ingest(kb, [docs], progress=False)
    return prepared


def _render_images(folder: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    folder.mkdir(parents=True, exist_ok=True)
    font = ImageFont.truetype(str(FONT), 36) if FONT.is_file() else ImageFont.load_default()
    for name, lines in IMAGES.items():
        image = Image.new("RGB", (900, 90 + 60 * len(lines)), "white")
        draw = ImageDraw.Draw(image)
        for i, line in enumerate(lines):
            draw.text((40, 40 + 60 * i), line, fill="black", font=font)
        image.save(folder / name)


def _kind(config: TeamConfig, name: str) -> str:
    spec = config.specialists.get(name)
    if spec is None:
        return f"unknown:{name}"
    return f"tool:{spec.tool}" if spec.kind == "tool" else spec.kind


def _decoded_tokens(result: RunResult) -> int:
    spans = result.trace.spans if result.trace is not None else []
    return sum(int(s.attrs.get("tokens") or 0) for s in spans if s.kind == "decode")


def run_team_task(team: Team, config: TeamConfig, task: SuiteTask, text: str) -> TaskOutcome:
    """Run one task on the team and judge it."""
    started = time.monotonic()
    try:
        result = team.run(text)
    except Exception as exc:  # noqa: BLE001 - one broken run fails one task
        return TaskOutcome(task.id, "team", False, "run failed", time.monotonic() - started, error=str(exc))
    seconds = time.monotonic() - started
    files = [str(s.artifacts["path"]) for s in result.subtasks if s.artifacts.get("path")]
    correct, why = check_answer(task.check, result.answer, files)
    names = [s.specialist for s in result.plan.subtasks] if result.plan else []
    rejected = any(n.startswith(("plan rejected", "planner failed")) for n in result.notes)
    return TaskOutcome(
        task.id,
        "team",
        correct,
        why,
        seconds,
        planning_s=result.timings.planning_s,
        tokens=_decoded_tokens(result),
        plan_first_try=not rejected,
        right_specialists={_kind(config, n) for n in names} == set(task.kinds),
        specialists=names,
        answer=result.answer,
        error=None if result.status == "done" else f"status {result.status}",
    )


def summarize(outcomes: Sequence[TaskOutcome]) -> dict[str, Any]:
    """Accuracy, first-try plans, specialist choice, median planning and run time, tokens per run."""
    if not outcomes:
        return {"tasks": 0}
    planned = [o for o in outcomes if o.plan_first_try is not None]
    planning = [o.planning_s for o in outcomes if o.planning_s is not None]
    median_run = statistics.median(o.seconds for o in outcomes)
    median_planning = statistics.median(planning) if planning else None
    return {
        "tasks": len(outcomes),
        "correct": sum(o.correct for o in outcomes),
        "accuracy": round(sum(o.correct for o in outcomes) / len(outcomes), 4),
        "plans_valid_first_try": round(sum(bool(o.plan_first_try) for o in planned) / len(planned), 4)
        if planned
        else None,
        "right_specialists": round(sum(bool(o.right_specialists) for o in planned) / len(planned), 4)
        if planned
        else None,
        "median_planning_s": round(median_planning, 3) if median_planning is not None else None,
        "median_run_s": round(median_run, 3),
        "planning_share_of_median_run": round(median_planning / median_run, 4)
        if median_planning is not None and median_run
        else None,
        "total_s": round(sum(o.seconds for o in outcomes), 1),
        "tokens_per_run": round(statistics.mean(o.tokens for o in outcomes), 1),
    }


def run_tasks_bench(
    config: TeamConfig,
    workdir: Path,
    *,
    baseline: str | None = None,
    limit: int | None = None,
    only: Sequence[str] = (),
    pool: ModelPool | None = None,
    on_outcome: Callable[[TaskOutcome], None] | None = None,
) -> dict[str, Any]:
    """Run the suite on the team (and the baseline, task by task); the report as a JSON-ready dict."""
    from tessera.models.pool import ModelPool
    from tessera.team import Team

    prepared = prepare(config, workdir)
    images = str(workdir / "images")
    tasks = [t for t in SUITE if not only or t.id in only][:limit]
    outcomes: dict[str, list[TaskOutcome]] = {"team": []}
    owned = pool is None
    pool = pool or ModelPool.from_team(prepared)
    try:
        team = Team(prepared, pool=pool)
        react = None
        if baseline == "react":
            from tessera.bench._react import ReactBaseline

            react = ReactBaseline(prepared, pool, workdir / "react-out")
            outcomes["react"] = []
        for task in tasks:
            text = task.text.format(images=images)
            runs = [run_team_task(team, prepared, task, text)]
            if react is not None:
                runs.append(react.run(task, text))
            for outcome in runs:
                outcomes[outcome.system].append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
    finally:
        if owned:
            pool.close()
    report: dict[str, Any] = {
        "team": config.name,
        "tasks": len(tasks),
        "systems": {name: summarize(found) for name, found in outcomes.items()},
        "by_shape": {
            name: {
                shape: summarize([o for o in found if _task(o.id).shape == shape])
                for shape in ("single", "parallel", "chain")
            }
            for name, found in outcomes.items()
        },
        "outcomes": [asdict(o) for found in outcomes.values() for o in found],
    }
    if "react" in outcomes and outcomes["react"]:
        team_s, react_s = report["systems"]["team"], report["systems"]["react"]
        report["team_vs_react"] = {
            "accuracy_difference": round(team_s["accuracy"] - react_s["accuracy"], 4),
            "median_run_ratio": round(team_s["median_run_s"] / react_s["median_run_s"], 3)
            if react_s["median_run_s"]
            else None,
        }
    return report


def _task(task_id: str) -> SuiteTask:
    return next(t for t in SUITE if t.id == task_id)
