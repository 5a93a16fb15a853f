"""Concurrency per model, not one run-wide cap: independent subtasks on function models all run at once."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tessera import Team, TeamConfig

HERE = "tests.graphs.test_concurrency"


def six(messages: list[dict[str, Any]], **_: Any) -> str:
    subtasks = [{"id": f"s{k}", "specialist": "worker", "instruction": f"part {k}"} for k in range(1, 7)]
    return json.dumps({"subtasks": subtasks})


def nap(messages: list[dict[str, Any]], **_: Any) -> str:
    time.sleep(0.4)
    return "done"


def test_six_independent_subtasks_on_function_models_run_at_once_by_default(tmp_path: Path) -> None:
    config = TeamConfig.from_dict(
        {
            "name": "wide",
            "state_dir": str(tmp_path),
            "models": {
                "planner": {"backend": "function", "callable": f"{HERE}:six"},
                "worker": {"backend": "function", "callable": f"{HERE}:nap"},
            },
            "planner": {"model": "planner"},
            "specialists": {"worker": {"description": "naps", "model": "worker"}},
            "memory": {"long_term": False},
        }
    )
    assert config.runtime.max_concurrency is None
    result = Team(config).run("six parts")
    spans = [(s.started or 0, s.ended or 0) for s in result.subtasks]
    assert len(spans) == 6 and all(s.status == "done" for s in result.subtasks)
    # one wave: every subtask started before any of them ended
    assert max(start for start, _ in spans) < min(end for _, end in spans)
