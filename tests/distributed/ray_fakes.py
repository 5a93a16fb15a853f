"""Function models for the Ray tests: they run inside actors, so they report where and when they ran."""

from __future__ import annotations

import json
import os
import time
from typing import Any


def planner(messages: list[dict[str, Any]], schema: dict[str, Any] | None = None, **_: Any) -> str:
    """Plans one subtask per specialist named after 'Task: use' (comma-separated); answers with the results."""
    if schema is not None and "subtasks" in schema.get("properties", {}):
        task = next(m for m in messages if m["role"] == "user")["content"].rsplit("Task: ", 1)[-1]
        names = task.removeprefix("use ").split(",")
        subtasks = [
            {"id": f"s{i}", "specialist": name.strip(), "instruction": f"part {i}", "depends_on": []}
            for i, name in enumerate(names)
        ]
        return json.dumps({"subtasks": subtasks})
    if schema is not None:
        return json.dumps({"done": True, "reason": ""})
    return f"answer from pid {os.getpid()}"


def worker(messages: list[dict[str, Any]], **_: Any) -> str:
    """Sleeps a second and says where and when: ``pid=<pid> start=<t> end=<t>``."""
    started = time.time()
    time.sleep(1.0)
    return f"pid={os.getpid()} start={started} end={time.time()}"
