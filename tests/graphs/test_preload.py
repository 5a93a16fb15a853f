"""Warm models: the pool loads a specialist's model while the plan is still streaming, and the REPL
loads the planner's model when it starts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from tessera import Team
from tessera.events import PlanReady

from .conftest import plan_for, sub, team_of


def tiny_team(tiny_gguf: Path, **extra: Any) -> Team:
    data: dict[str, Any] = {
        "name": "warm",
        "models": {
            "planner": {"backend": "function", "callable": "tests.fakes:slow_planner"},
            "tiny": {"backend": "llama_cpp", "path": str(tiny_gguf), "n_ctx": 256, "max_tokens": 4},
        },
        "planner": {"model": "planner"},
        "specialists": {"general": {"description": "does anything", "model": "tiny"}},
        "memory": {"long_term": False},
        **extra,
    }
    return team_of(data)


def loaded(team: Team, name: str) -> bool:
    return next(s.loaded for s in team.pool.status() if s.name == name)


def loaded_when_planned(team: Team, task: str) -> bool | None:
    """Whether the specialist's model was loaded when the plan was complete."""
    at_plan_ready = None
    for event in team.stream(task):
        if isinstance(event, PlanReady):
            at_plan_ready = loaded(team, "tiny")
    team.close()
    return at_plan_ready


def test_the_specialists_model_loads_while_the_plan_streams(tiny_gguf: Path) -> None:
    task = plan_for("warm up", sub("a", "one"), sub("b", "two"), sub("c", "three"))
    assert loaded_when_planned(tiny_team(tiny_gguf), task) is True


def test_without_preloading_or_streaming_the_model_loads_on_first_use(tiny_gguf: Path) -> None:
    team = tiny_team(tiny_gguf, runtime={"preload": False}, planner={"model": "planner", "stream": False})
    assert loaded_when_planned(team, plan_for("cold start", sub("a", "one"))) is False


def test_the_repl_preloads_the_planners_model(tiny_gguf: Path) -> None:
    from tessera.cli.chat import Chat

    config = tiny_team(tiny_gguf).config.model_copy(deep=True)
    config.planner.model = "tiny"
    chat = Chat(config, None, Console(file=open("/dev/null", "w")), interactive=False)  # noqa: SIM115
    deadline = time.monotonic() + 30
    while not loaded(chat.team, "tiny"):
        assert time.monotonic() < deadline, "the planner's model never loaded"
        time.sleep(0.05)
    chat.team.close()
