"""Framework overhead per subtask of ``Team.run`` against a bare LangGraph graph of the same size.

What it measures: with zero-latency ``function`` models and a 32-subtask plan, the wall time of one run
that is NOT inside a model or tool call, divided by the number of subtasks. Two plan shapes:

* ``independent``: 32 subtasks with no dependencies;
* ``chains``: 4 chains of 8 (each step quotes ``{{previous}}``), a DAG 8 levels deep.

Two sides, alternated (ABBA) in ONE process and ONE event loop after a warm-up of each:

* ``tessera``: :meth:`tessera.Team.arun` on a team whose planner and worker are this module's
  ``planner`` / ``worker`` functions (``backend: function``);
* ``bare``: a hand-written async LangGraph ``StateGraph``: START -> plan -> ``Send`` a worker per ready
  subtask (level by level for the DAG) -> join -> answer -> END, calling the same two functions directly.

Overhead is counted two ways:

* ``overhead`` (the issue's number): Tessera's own ``RunResult.timings.overhead_s``, i.e. wall minus the
  union of the spans Tessera records around model calls (``model.ainvoke``, so langchain-core's call
  machinery and the hop to a worker thread count as model time); for the bare side, wall minus the union of
  the spans of the functions themselves;
* ``strict``: wall minus the union of the spans of the functions themselves, for both sides: everything
  that is not the user's code, langchain-core included.

The target is ``overhead`` under 2 ms per subtask (``passes_target``); ``passes_target_strict`` applies the
same bound to the strict count. ``ratio`` is median tessera / median bare; ``paired`` is the median of
the per-round ratios, which shrugs off a busy machine better. ``--concurrency`` is Tessera's
``runtime.max_concurrency`` and the bare graph's ``max_concurrency``. The script always exits 0.

    python benchmarks/orchestration_overhead.py [--repeats 30] [--concurrency 32] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import importlib.metadata
import json
import operator
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

os.environ["TESSERA_QUIET"] = "1"
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # measure this checkout's tessera, installed or not
    sys.path.insert(0, str(ROOT))

from _stats import quantile, write_results  # noqa: E402 - beside this script

from tessera.types import union_length  # noqa: E402 - after the sys.path fix above

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "orchestration_overhead.json"
SUBTASKS = 32
CHAINS = 4
TARGET_MS = 2.0
SHAPES = {"independent": "Do 32 independent things.", "chains": "Do 4 chains of 8 steps."}
PLAN_SCHEMA = {"type": "object", "properties": {"subtasks": {"type": "array"}}}

CALLS: list[tuple[float, float]] = []
"""(start, end) monotonic times of every call of ``planner`` and ``worker``: the 'model' time."""
_CALLS_LOCK = threading.Lock()


def plan_for(task: str) -> dict[str, Any]:
    """The 32-subtask plan of a shape, as the planner returns it."""
    if task == SHAPES["independent"]:
        subtasks = [
            {"id": f"s{i}", "specialist": "general", "instruction": f"part {i}", "depends_on": []}
            for i in range(SUBTASKS)
        ]
    else:
        length = SUBTASKS // CHAINS
        subtasks = []
        for c in range(CHAINS):
            for k in range(length):
                prev = [f"c{c}k{k - 1}"] if k else []
                text = f"step {k} of chain {c}" + (f" after {{{{c{c}k{k - 1}}}}}" if k else "")
                subtasks.append(
                    {"id": f"c{c}k{k}", "specialist": "general", "instruction": text, "depends_on": prev}
                )
    return {"subtasks": subtasks}


def _record(started: float) -> None:
    with _CALLS_LOCK:
        CALLS.append((started, time.monotonic()))


def planner(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **_: Any) -> str:
    """Zero-latency planner: the plan, the join verdict, or the final answer (by ``schema``)."""
    started = time.monotonic()
    try:
        if schema is not None and "subtasks" in schema.get("properties", {}):
            task = next(m["content"] for m in messages if m["role"] == "user").rsplit("Task: ", 1)[-1]
            return json.dumps(plan_for(task))
        if schema is not None:
            return '{"done": true, "reason": ""}'
        return "final answer"
    finally:
        _record(started)


def worker(messages: list[dict[str, Any]], **_: Any) -> str:
    """Zero-latency specialist."""
    started = time.monotonic()
    try:
        return "ok"
    finally:
        _record(started)


def summary_ms(samples_s: list[float]) -> dict[str, float]:
    """Median and p90 of per-subtask milliseconds."""
    per = [s * 1000 / SUBTASKS for s in samples_s]
    return {"median": statistics.median(per), "p90": quantile(per, 0.9)}


# -- the bare LangGraph side ---------------------------------------------------------------------------


def _merge(old: dict[str, str] | None, new: dict[str, str] | None) -> dict[str, str]:
    return {**(old or {}), **(new or {})}


class BareState(TypedDict, total=False):
    task: str
    plan: list[dict[str, Any]]
    results: Annotated[dict[str, str], _merge]
    notes: Annotated[list[str], operator.add]
    answer: str


def build_bare_graph() -> Any:
    """START -> plan -> Send(worker) per ready subtask -> join -> (next level | answer) -> END."""

    async def plan(state: BareState) -> dict[str, Any]:
        messages = [{"role": "system", "content": "Plan."}, {"role": "user", "content": state["task"]}]
        return {"plan": json.loads(planner(messages, schema=PLAN_SCHEMA))["subtasks"]}

    def dispatch(state: BareState) -> list[Send] | str:
        done = state.get("results") or {}
        ready = [s for s in state["plan"] if s["id"] not in done and all(d in done for d in s["depends_on"])]
        if not ready:
            return "answer"
        return [Send("work", {"subtask": s, "outputs": {d: done[d] for d in s["depends_on"]}}) for s in ready]

    async def work(payload: dict[str, Any]) -> dict[str, Any]:
        subtask = payload["subtask"]
        text = subtask["instruction"]
        for dep, output in payload["outputs"].items():
            text = text.replace("{{" + dep + "}}", output)
        return {"results": {subtask["id"]: worker([{"role": "user", "content": text}])}}

    async def join(state: BareState) -> dict[str, Any]:
        return {}

    async def answer(state: BareState) -> dict[str, Any]:
        lines = "\n".join(f"[{i}] {out}" for i, out in (state.get("results") or {}).items())
        messages = [{"role": "system", "content": "Answer."}, {"role": "user", "content": lines}]
        return {"answer": planner(messages)}

    graph = StateGraph(BareState)
    graph.add_node("plan", plan)
    graph.add_node("work", work)  # type: ignore[arg-type]  # takes a Send payload
    graph.add_node("join", join)
    graph.add_node("answer", answer)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", dispatch, ["work", "answer"])
    graph.add_edge("work", "join")
    graph.add_conditional_edges("join", dispatch, ["work", "answer"])
    graph.add_edge("answer", END)
    return graph.compile()


# -- the Tessera side ----------------------------------------------------------------------------------


def build_team(concurrency: int) -> Any:
    """A team whose planner and only specialist are this module's zero-latency functions."""
    from tessera import Team, TeamConfig

    here = __name__  # "__main__" when run as a script: import_callable finds it in sys.modules
    config = TeamConfig.from_dict(
        {
            "name": "overhead",
            "models": {
                "planner": {"backend": "function", "callable": f"{here}:planner"},
                "worker": {"backend": "function", "callable": f"{here}:worker"},
            },
            "planner": {"model": "planner", "max_subtasks": SUBTASKS, "max_replans": 1},
            "specialists": {"general": {"description": "does anything", "model": "worker"}},
            "runtime": {"max_concurrency": concurrency},
        }
    )
    return Team(config)


async def one_run(side: str, shape: str, team: Any, bare: Any, concurrency: int) -> dict[str, float]:
    """One run of one side; wall, reported overhead and strict overhead in seconds."""
    task = SHAPES[shape]
    CALLS.clear()
    gc.collect()
    started = time.monotonic()
    if side == "tessera":
        result = await team.arun(task)
        ended = time.monotonic()
        ok = result.status == "done" and len(result.subtasks) == SUBTASKS
        ok = ok and all(s.status == "done" for s in result.subtasks) and result.answer == "final answer"
        reported = result.timings.overhead_s
    else:
        state = await bare.ainvoke({"task": task}, {"max_concurrency": concurrency})
        ended = time.monotonic()
        ok = len(state["results"]) == SUBTASKS and state["answer"] == "final answer"
        reported = None
    if not ok:
        raise RuntimeError(f"{side}/{shape}: the run did not finish all {SUBTASKS} subtasks")
    wall = ended - started
    strict = wall - union_length(CALLS, started, ended)
    return {"wall_s": wall, "overhead_s": strict if reported is None else reported, "strict_s": strict}


async def measure(repeats: int, concurrency: int) -> dict[str, dict[str, list[dict[str, float]]]]:
    team = build_team(concurrency)
    bare = build_bare_graph()
    samples: dict[str, dict[str, list[dict[str, float]]]] = {}
    for shape in SHAPES:
        samples[shape] = {"tessera": [], "bare": []}
        for side in ("tessera", "bare"):  # warm-up
            await one_run(side, shape, team, bare, concurrency)
        for i in range(repeats):
            order = ("tessera", "bare") if i % 2 == 0 else ("bare", "tessera")
            for side in order:
                samples[shape][side].append(await one_run(side, shape, team, bare, concurrency))
    team.close()
    return samples


def checkout() -> dict[str, Any]:
    """The commit measured, and the files under ``tessera/`` that differ from it."""

    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.rstrip() if done.returncode == 0 else ""

    dirty = [line[3:] for line in git("status", "--porcelain", "--", "tessera").splitlines()]
    return {"commit": git("rev-parse", "HEAD") or None, "tessera_changes_uncommitted": dirty}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="alternating rounds per shape")
    parser.add_argument("--concurrency", type=int, default=32, help="runtime.max_concurrency (both sides)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = parser.parse_args(argv)

    load = list(os.getloadavg())
    samples = asyncio.run(measure(args.repeats, args.concurrency))
    stats: dict[str, Any] = {}
    for shape, sides in samples.items():
        stats[shape] = {}
        for side, runs in sides.items():
            stats[shape][side] = {
                key.removesuffix("_s") + "_ms_per_subtask": summary_ms([r[key] for r in runs])
                for key in ("wall_s", "overhead_s", "strict_s")
            }
        t, b = stats[shape]["tessera"], stats[shape]["bare"]
        stats[shape]["ratio"] = {k: t[k]["median"] / b[k]["median"] for k in t if b[k]["median"] > 0}
        pairs = list(zip(sides["tessera"], sides["bare"], strict=True))
        stats[shape]["paired_ratio"] = {
            key.removesuffix("_s") + "_ms_per_subtask": statistics.median(x[key] / y[key] for x, y in pairs)
            for key in ("wall_s", "strict_s")
        }
    worst = max(stats[s]["tessera"]["overhead_ms_per_subtask"]["median"] for s in SHAPES)
    worst_strict = max(stats[s]["tessera"]["strict_ms_per_subtask"]["median"] for s in SHAPES)
    result: dict[str, Any] = {
        "parameters": {
            "subtasks": SUBTASKS,
            "shapes": {
                "independent": f"{SUBTASKS} independent",
                "chains": f"{CHAINS} chains of {SUBTASKS // CHAINS}",
            },
            "max_concurrency": args.concurrency,
            "repeats": args.repeats,
            "models": "function, zero latency (sync callables)",
        },
        "definitions": {
            "wall": "wall time of Team.arun / the bare graph's ainvoke, per subtask",
            "overhead": "tessera: RunResult.timings.overhead_s (wall minus its recorded model-call spans, "
            "which wrap model.ainvoke); bare: wall minus the spans of the functions themselves",
            "strict": "both sides: wall minus the union of the spans of the functions themselves",
            "ratio": "median tessera / median bare",
            "paired_ratio": "median over rounds of tessera / bare in the same round (robust to noise)",
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average_at_start": load,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "langgraph": importlib.metadata.version("langgraph"),
            "langchain_core": importlib.metadata.version("langchain-core"),
            "tessera": __import__("tessera").__version__,
        },
        "checkout": checkout(),
        "stats": stats,
        "samples_s": samples,
        "target_ms_per_subtask": TARGET_MS,
        "worst_median_overhead_ms_per_subtask": worst,
        "worst_median_strict_ms_per_subtask": worst_strict,
        "passes_target": worst < TARGET_MS,
        "passes_target_strict": worst_strict < TARGET_MS,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }

    print(
        f"{SUBTASKS} subtasks, zero-latency function models, max_concurrency {args.concurrency}, "
        f"{args.repeats} rounds, {os.cpu_count()} CPUs; ms per subtask, median (p90)"
    )
    print(f"{'shape':<12} {'side':<8} {'wall':>15} {'overhead':>15} {'strict':>15}")
    for shape in SHAPES:
        for side in ("tessera", "bare"):
            row = stats[shape][side]
            cells = [f"{row[k]['median']:.3f} ({row[k]['p90']:.3f})" for k in row]
            print(f"{shape:<12} {side:<8} " + " ".join(f"{c:>15}" for c in cells))
        ratio, paired = stats[shape]["ratio"], stats[shape]["paired_ratio"]
        print(f"{shape:<12} {'ratio':<8} " + " ".join(f"{ratio[k]:>14.2f}x" for k in ratio))
        cells = [f"{paired[k]:.2f}x" if k in paired else "" for k in ratio]
        print(f"{shape:<12} {'paired':<8} " + " ".join(f"{c:>15}" for c in cells))
    print(
        "overhead = tessera's timings.overhead_s (langchain-core model-call machinery counts as model time); "
        "strict = wall minus time inside the functions, both sides"
    )
    verdict = "PASS" if result["passes_target"] else "FAIL"
    strict_verdict = "PASS" if result["passes_target_strict"] else "FAIL"
    print(
        f"worst median overhead {worst:.3f} ms/subtask -> {verdict} at {TARGET_MS} ms "
        f"(strict {worst_strict:.3f} ms -> {strict_verdict})"
    )
    write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
