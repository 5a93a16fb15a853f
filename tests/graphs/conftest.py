"""Helpers for driving the real graph with function models (``FunctionModel`` over ``tests.fakes``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tessera import Team, TeamConfig
from tessera.models.function import FunctionModel

from .. import fakes


def team(
    models: dict[str, str] | None = None,
    *,
    state_dir: Path | None = None,
    extra: dict[str, Any] | None = None,
    **specialists: Any,
) -> Team:
    """A team whose planner is ``fakes.planner`` and whose models are the ``fakes`` functions named.

    The config only names the models; they come in as ``FunctionModel`` instances (``Team(models=...)``).
    """
    models = {"planner": "planner", **(models or {"worker": "echo"})}
    data: dict[str, Any] = {
        "name": "t",
        "models": {name: {"backend": "function"} for name in models},
        "planner": {"model": "planner", "max_subtasks": 8, "max_replans": 1},
        "specialists": specialists or {"general": {"description": "does anything", "model": "worker"}},
        "runtime": {"max_concurrency": 8},
        "memory": {"long_term": False},  # orchestration tests; tests/memory covers long-term memory
    }
    if state_dir is not None:
        data["state_dir"] = str(state_dir)
    for section, values in (extra or {}).items():
        data[section] = {**data.get(section, {}), **values} if isinstance(values, dict) else values
    instances = {name: FunctionModel(getattr(fakes, fn), model_id=name) for name, fn in models.items()}
    return Team(TeamConfig.from_dict(data), models=instances)


def team_of(data: dict[str, Any]) -> Team:
    """``Team`` of a config dict whose function models name ``tests.fakes`` functions by ``callable``: the
    config keeps only their names and settings (cost, …), the functions come in as ``FunctionModel``s."""
    instances: dict[str, FunctionModel] = {}
    for name, entry in data["models"].items():
        target = entry.get("callable", "")
        if entry.get("backend") == "function" and target.startswith("tests.fakes:"):
            instances[name] = FunctionModel(getattr(fakes, target.split(":", 1)[1]), model_id=name)
            data["models"][name] = {k: v for k, v in entry.items() if k != "callable"}
    return Team(TeamConfig.from_dict(data), models=instances)


def sub(
    i: str, instruction: str = "work", deps: list[str] | None = None, who: str = "general"
) -> dict[str, Any]:
    """One subtask of a plan, as the planner returns it."""
    return {"id": i, "specialist": who, "instruction": instruction, "depends_on": deps or []}


def plan_for(task: str, *subtasks: dict[str, Any]) -> str:
    """Make the fake planner answer ``task`` with this plan; return the task."""
    fakes.PLANS[task] = {"subtasks": list(subtasks)}
    return task


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"
