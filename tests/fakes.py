"""Function models for orchestration tests (importable as ``tests.fakes:NAME`` from team configs)."""

from __future__ import annotations

import json
import time
from typing import Any

PLANS: dict[str, Any] = {}
"""Plan JSON by task text, set by the tests."""


def planner(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **_: Any) -> str:
    first_user = next(m for m in messages if m["role"] == "user")
    task = first_user["content"].rsplit("Task: ", 1)[-1]
    if schema is not None and "subtasks" in schema.get("properties", {}):
        plan = PLANS[task]
        return json.dumps(plan(messages) if callable(plan) else plan)
    if schema is not None:  # the join decision
        return json.dumps(
            {"done": "Replan because" in str(messages) or "replan" not in task, "reason": "retry it"}
        )
    return "final: " + " | ".join(
        line for line in messages[-1]["content"].splitlines() if line.startswith("[")
    )


def sleeper(messages: list[dict[str, Any]], **_: Any) -> str:
    time.sleep(0.5)
    return "slept: " + messages[-1]["content"]


def echo(messages: list[dict[str, Any]], **_: Any) -> str:
    text = messages[-1]["content"]
    if "FAIL" in text:
        raise RuntimeError("asked to fail")
    if "HANG" in text:
        time.sleep(3)
    return "did: " + text
