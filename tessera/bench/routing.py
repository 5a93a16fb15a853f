"""``tessera bench routing``: routing policies on a synthetic workload with a known ground truth.

The workload (seeded, so every run with the same seed sees the same tasks and the same model luck):

- Four kinds of task, each its own specialist, with a difficulty drawn uniformly from a range:
  ``lookup`` 0–0.30 (35% of tasks), ``summarize`` 0.10–0.45 (30%), ``code`` 0.30–0.70 (20%),
  ``proof`` 0.55–0.92 (15%).
- Three tiers of ``function`` models: ``small`` (ability 0.35, cost 1), ``medium`` (0.65, cost 4) and
  ``large`` (0.92, cost 16). A tier solves a task of difficulty ``d`` with probability
  ``1 / (1 + exp((d - ability) / 0.04))``.
- A tier that does not solve a task fails *visibly* 85% of the time (its output breaks the specialists'
  ``output_schema``, so the subtask escalates) and *silently* 15% of the time (valid JSON, wrong answer:
  nothing catches it, exactly like a plausible wrong answer in real life).
- Every reply is two words long, so a call costs its tier's ``cost`` x 2/1000 and cost ratios are the tiers'.

Every task runs through a real :class:`~tessera.Team` (planner, router, checks, escalation), once per
policy, each with a fresh state dir:

- ``always_smallest`` / ``always_largest``: one tier only;
- ``static``: the three tiers, first tier from the static policy (length, floor, difficulty estimate),
  escalation up to 2 tiers, no calibration;
- ``calibrated``: the same, learning each specialist's starting tier from the runs before it.

Quality is the share of tasks answered correctly; cost is the summed relative cost of every attempt.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["KINDS", "POLICIES", "TIERS", "run_routing_bench"]

TIERS = {"small": (0.35, 1.0), "medium": (0.65, 4.0), "large": (0.92, 16.0)}
"""Tier -> (ability, relative cost per 1k tokens)."""
KINDS = {
    "lookup": (0.0, 0.30, 0.35),
    "summarize": (0.10, 0.45, 0.30),
    "code": (0.30, 0.70, 0.20),
    "proof": (0.55, 0.92, 0.15),
}
"""Task kind -> (lowest difficulty, highest difficulty, share of the workload)."""
VISIBLE = 0.85
"""Share of failures that break the output schema (the rest are silently wrong)."""
POLICIES = ("always_smallest", "always_largest", "static", "calibrated")
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string", "maxLength": 40}},
    "required": ["answer"],
}

_TASKS: dict[str, tuple[int, float]] = {}
"""Instruction -> (task number, difficulty), for the tier functions."""
_SEED = [0]


def make_tasks(n: int, seed: int) -> list[tuple[int, str, float]]:
    """``n`` tasks as (number, kind, difficulty), drawn with ``seed``."""
    rng = random.Random(seed)
    kinds = list(KINDS)
    weights = [KINDS[k][2] for k in kinds]
    tasks = []
    for i in range(n):
        kind = rng.choices(kinds, weights)[0]
        low, high, _ = KINDS[kind]
        tasks.append((i, kind, rng.uniform(low, high)))
    return tasks


def _uniform(*key: object) -> float:
    digest = hashlib.sha256(repr((_SEED[0], *key)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _tier(name: str, messages: list[dict[str, Any]]) -> str:
    number, difficulty = _TASKS[messages[-1]["content"]]
    ability = TIERS[name][0]
    if _uniform(number, name, "solve") < 1 / (1 + math.exp((difficulty - ability) / 0.04)):
        return json.dumps({"answer": f"right-{number}"})
    if _uniform(number, name, "visible") < VISIBLE:
        return "not sure"  # breaks the schema
    return json.dumps({"answer": f"wrong-{number}"})


def small(messages: list[dict[str, Any]], **_: Any) -> str:
    """The small tier (a ``function`` model)."""
    return _tier("small", messages)


def medium(messages: list[dict[str, Any]], **_: Any) -> str:
    """The medium tier (a ``function`` model)."""
    return _tier("medium", messages)


def large(messages: list[dict[str, Any]], **_: Any) -> str:
    """The large tier (a ``function`` model)."""
    return _tier("large", messages)


def planner(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **_: Any) -> str:
    """Plans each task as one subtask for the specialist its kind names."""
    task = messages[-1]["content"].rsplit("Task: ", 1)[-1].strip()
    if schema is not None and "subtasks" not in schema.get("properties", {}):
        return json.dumps({"done": True, "reason": ""})
    kind = task.split(" ", 1)[0]
    return json.dumps({"subtasks": [{"id": "s1", "specialist": kind, "instruction": task}]})


def team_config(policy: str, state_dir: Path) -> dict[str, Any]:
    """The team a policy runs as (plain data, as a YAML file would hold it)."""
    here = __name__ + ":"
    tiers = {"always_smallest": ["small"], "always_largest": ["large"]}.get(policy, list(TIERS))
    return {
        "name": f"routing-{policy}",
        "state_dir": str(state_dir),
        "models": {
            "planner": {"backend": "function", "callable": here + "planner"},
            **{
                name: {"backend": "function", "callable": here + name, "cost": cost}
                for name, (_, cost) in TIERS.items()
            },
        },
        "planner": {"model": "planner"},
        "specialists": {
            kind: {"description": f"{kind} tasks", "output_schema": SCHEMA, "max_attempts": 1}
            for kind in KINDS
        },
        "routing": {"tiers": tiers, "max_escalations": 2, "calibrate": policy == "calibrated"},
        "memory": {"long_term": False},
    }


def run_policy(policy: str, tasks: list[tuple[int, str, float]]) -> dict[str, Any]:
    """Run every task under ``policy``; quality, cost, and how the work spread over the tiers."""
    from tessera.config import TeamConfig
    from tessera.team import Team

    solved, cost, escalated = 0, 0.0, 0
    first_tiers: dict[str, int] = {}
    halves = [[0, 0.0], [0, 0.0]]
    with tempfile.TemporaryDirectory(prefix="tessera-bench-routing-") as tmp:
        team = Team(TeamConfig.from_dict(team_config(policy, Path(tmp) / "state")))
        try:
            for number, kind, _ in tasks:
                result = team.run(f"{kind} task {number}")
                sub = result.subtasks[0]
                right = result.status == "done" and f"right-{number}" in result.answer
                solved += right
                cost += sub.cost
                escalated += bool(sub.escalations)
                first = sub.escalations[0].split(" ->", 1)[0] if sub.escalations else sub.tier or "?"
                first_tiers[first] = first_tiers.get(first, 0) + 1
                half = halves[number >= len(tasks) // 2]
                half[0] += right
                half[1] += sub.cost
        finally:
            team.close()
    n = len(tasks)
    return {
        "quality": round(solved / n, 4),
        "cost": round(cost, 4),
        "escalation_rate": round(escalated / n, 4),
        "first_tier_share": {t: round(c / n, 4) for t, c in sorted(first_tiers.items())},
        "second_half": {"quality": round(halves[1][0] / (n - n // 2), 4), "cost": round(halves[1][1], 4)},
    }


def run_routing_bench(tasks: int = 300, seed: int = 7) -> dict[str, Any]:
    """Every policy on the same ``tasks`` tasks; ratios are against ``always_largest``."""
    work = make_tasks(tasks, seed)
    _SEED[0] = seed
    _TASKS.clear()
    _TASKS.update({f"{kind} task {number}": (number, d) for number, kind, d in work})
    started = time.perf_counter()
    policies = {policy: run_policy(policy, work) for policy in POLICIES}
    largest = policies["always_largest"]
    for row in policies.values():
        row["quality_vs_largest"] = round(row["quality"] / largest["quality"], 4) if largest["quality"] else 0
        row["cost_vs_largest"] = round(row["cost"] / largest["cost"], 4) if largest["cost"] else 0
    calibrated = policies["calibrated"]
    return {
        "policies": policies,
        "tasks": tasks,
        "seed": seed,
        "target": "calibrated >= 95% of always_largest quality at <= 40% of its cost",
        "target_met": calibrated["quality_vs_largest"] >= 0.95 and calibrated["cost_vs_largest"] <= 0.40,
        "seconds": round(time.perf_counter() - started, 2),
    }
