"""``tessera bench latency``: the same multi-subtask task run three ways, in one run.

The team (all local, no download): a planner that streams its plan at a steady rate (a ``function`` model
standing in for a planner model writing ~100 tokens), two llama.cpp models on a generated GGUF, and a
``remote`` function model with a fixed 1 s latency (a model on another box). The plan has five subtasks:

- ``s1`` research on model A, ``s2`` writer on model A (another system prompt), ``s3`` critic on model B,
  ``s4`` a remote lookup; then ``s5`` research again on model A, quoting all four.

Each specialist has a long system prompt (``prompt_tokens``), so prefill dominates a call, as it does for
real specialists with instructions and tool descriptions. The three modes, each on a fresh pool:

- ``sequential``: one subtask at a time (``max_concurrency: 1``), the plan waited for, no preloading, no
  prefix cache;
- ``dag``: DAG dispatch (independent subtasks at once), the plan still waited for, no preloading, no
  prefix cache: ``s5`` prefills its system prompt again, because ``s2`` ran on model A in between;
- ``streamed``: subtasks start as the plan streams, models preload as the plan names them, and the prefix
  cache restores ``s5``'s system prompt.

It also measures TTFT for a repeated ~1,000-token system prompt, cold against warm, on the same model.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["MODES", "run_latency_bench"]

MODES = ("sequential", "dag", "streamed")
PLAN = {
    "subtasks": [
        {"id": "s1", "specialist": "research", "instruction": "Collect the facts about topic one."},
        {"id": "s2", "specialist": "writer", "instruction": "Draft an opening paragraph."},
        {"id": "s3", "specialist": "critic", "instruction": "List the weak points of the draft plan."},
        {"id": "s4", "specialist": "remote", "instruction": "Look up the reference numbers."},
        {
            "id": "s5",
            "specialist": "research",
            "instruction": "Check {{s1}} against {{s2}}, {{s3}} and {{s4}}.",
            "depends_on": ["s1", "s2", "s3", "s4"],
        },
    ]
}
PLAN_SECONDS = [1.5]
"""How long the stand-in planner takes to write the plan (set by the bench)."""


def planner(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **_: Any) -> Any:
    """Streams :data:`PLAN` in 30 pieces over ``PLAN_SECONDS``; answers the join and the final answer."""
    if schema is not None and "subtasks" not in schema.get("properties", {}):
        return json.dumps({"done": True, "reason": ""})
    if schema is None:
        return "summary of " + str(messages[-1]["content"].count("\n[")) + " results"
    return _trickle(json.dumps(PLAN), PLAN_SECONDS[0])


def _trickle(text: str, seconds: float) -> Any:
    step = max(1, len(text) // 30)
    for i in range(0, len(text), step):
        time.sleep(seconds / 30)
        yield text[i : i + step]


def remote(messages: list[dict[str, Any]], **_: Any) -> str:
    """A model on another machine: a fixed second of network and generation."""
    time.sleep(1.0)
    return "reference numbers: 4, 8, 15"


def _system_prompt(role: str, tokens: int) -> str:
    rule = f"As the {role}, keep every answer short, factual and in plain words. "
    return (f"You are the {role} of a small team. " + rule * (tokens // len(rule) + 1))[:tokens]


def team_config(mode: str, model_path: Path, state_dir: Path, prompt_tokens: int) -> dict[str, Any]:
    """The team for one mode (plain data, as a YAML file would hold it)."""
    streamed = mode == "streamed"
    here = __name__ + ":"
    local = {
        "backend": "llama_cpp",
        "path": str(model_path),
        "n_ctx": max(1024, prompt_tokens * 2),
        "n_threads": 1,
        "max_tokens": 16,
        "temperature": 0,
        "seed": 1,
        "prefix_cache_mb": 256 if streamed else 0,
    }
    specialists = {
        name: {
            "description": f"the {name}",
            "model": model,
            "system_prompt": _system_prompt(name, prompt_tokens),
        }
        for name, model in (("research", "a"), ("writer", "a"), ("critic", "b"))
    }
    specialists["remote"] = {"description": "looks things up remotely", "model": "remote"}
    return {
        "name": f"latency-{mode}",
        "state_dir": str(state_dir),
        "models": {
            "planner": {"backend": "function", "callable": here + "planner"},
            "remote": {"backend": "function", "callable": here + "remote"},
            "a": local,
            "b": local,
        },
        "planner": {"model": "planner", "stream": streamed},
        "specialists": specialists,
        "runtime": {"max_concurrency": 1 if mode == "sequential" else 4, "preload": streamed},
        "memory": {"long_term": False},
    }


def run_mode(mode: str, model_path: Path, prompt_tokens: int) -> dict[str, Any]:
    """One run of the task in ``mode`` on a fresh team and pool."""
    from tessera.config import TeamConfig
    from tessera.team import Team

    with tempfile.TemporaryDirectory(prefix="tessera-bench-latency-") as tmp:
        team = Team(TeamConfig.from_dict(team_config(mode, model_path, Path(tmp) / "state", prompt_tokens)))
        try:
            started = time.time()
            result = team.run("Write the report.")
            total = time.time() - started
        finally:
            team.close()
    # The generated model has random weights: an empty reply fails its subtask (and skips its dependents),
    # which says nothing about latency. Only a run that produced no answer at all is an error.
    if result.status not in ("done", "partial"):
        raise RuntimeError(f"bench latency: the {mode} run failed: {result.notes}")
    first = min(s.started for s in result.subtasks if s.started is not None)
    return {
        "total_s": round(total, 3),
        "unfinished_subtasks": len(result.unfinished),
        "time_to_first_subtask_s": round(first - started, 3),
        "planning_s": round(result.timings.planning_s, 3),
        "overhead_s": round(result.timings.overhead_s, 3),
        "subtasks": {
            s.id: {"start_s": round((s.started or started) - started, 3), "seconds": round(_seconds(s), 3)}
            for s in result.subtasks
        },
    }


def _seconds(result: Any) -> float:
    return (result.ended or 0.0) - (result.started or 0.0)


def run_latency_bench(
    model_path: Path | None = None,
    *,
    prompt_tokens: int = 400,
    plan_seconds: float = 1.5,
    ttft_tokens: int = 1000,
) -> dict[str, Any]:
    """All three modes, then TTFT cold vs warm; the JSON that ``tessera bench latency --json`` prints."""
    from tessera.bench._ttft import measure_ttft
    from tessera.testing.tiny import write_bench_gguf

    PLAN_SECONDS[0] = plan_seconds
    with tempfile.TemporaryDirectory(prefix="tessera-bench-model-") as tmp:
        path = model_path or write_bench_gguf(Path(tmp) / "bench.gguf")
        modes = {mode: run_mode(mode, path, prompt_tokens) for mode in MODES}
        ttft = measure_ttft(path, system_tokens=ttft_tokens, setups=("prefix_cache",))
    sequential, dag, streamed = (modes[m]["total_s"] for m in MODES)
    return {
        "sequential_s": sequential,
        "dag_s": dag,
        "streamed_s": streamed,
        "time_to_first_subtask_s": {
            "dag": modes["dag"]["time_to_first_subtask_s"],
            "streamed": modes["streamed"]["time_to_first_subtask_s"],
        },
        "ttft_cold_s": ttft["ttft_cold_s"],
        "ttft_warm_s": ttft["ttft_warm_s"],
        "speedup": {
            "dag_vs_sequential": round(sequential / dag, 2),
            "streamed_vs_dag": round(dag / streamed, 2),
            "ttft_cold_vs_warm": round(ttft["ttft_cold_s"] / ttft["ttft_warm_s"], 2),
        },
        "overhead_s": {m: modes[m]["overhead_s"] for m in MODES},
        "modes": modes,
        "ttft": ttft,
        "settings": {
            "prompt_tokens": prompt_tokens,
            "plan_seconds": plan_seconds,
            "ttft_tokens": ttft_tokens,
        },
    }
