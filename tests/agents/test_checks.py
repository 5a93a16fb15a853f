"""Output that is not an answer fails its attempt: an echo of the system prompt, a repeated instruction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tessera import Team, TeamConfig
from tessera.agents.checks import echo_problem
from tessera.agents.general import GENERAL_PROMPT

SYSTEM = GENERAL_PROMPT


@pytest.mark.parametrize(
    ("output", "instruction", "problem"),
    [
        ("", "Say hi", "empty answer"),
        ("  \n ", "Say hi", "empty answer"),
        ("No preamble, no description of what you did.", "Name a colour", "system prompt"),
        (
            "Compute the 20th Fibonacci number with Python.",
            "Compute the 20th Fibonacci number with Python.",
            "instruction",
        ),
        ("6765", "Compute the 20th Fibonacci number with Python.", None),
        ("hi", "Say hi", None),
        ("Do exactly the task.", "Describe your job in four words.", "system prompt"),
        (
            "The Fibonacci sequence is a series where each number is the sum of the two before it.",
            "Explain it.",
            None,
        ),
    ],
)
def test_echo_problem(output: str, instruction: str, problem: str | None) -> None:
    found = echo_problem(output, system_prompt=SYSTEM, instruction=instruction)
    assert (found is None) if problem is None else (found is not None and problem in found), found


def plan(messages: list[dict[str, Any]], **_: Any) -> str:
    return json.dumps({"subtasks": [{"id": "s1", "specialist": "writer", "instruction": "Name a colour."}]})


def echoes(messages: list[dict[str, Any]], **_: Any) -> str:
    return "No preamble, no description of what you did."


def answers(messages: list[dict[str, Any]], **_: Any) -> str:
    return "Teal."


def team(tmp_path: Path, *, routed: bool) -> Team:
    here = "tests.agents.test_checks"
    writer: dict[str, Any] = {"description": "writes"}
    if not routed:
        writer["model"] = "small"
    return Team(
        TeamConfig.from_dict(
            {
                "name": "echo",
                "state_dir": str(tmp_path),
                "models": {
                    "planner": {"backend": "function", "callable": f"{here}:plan"},
                    "small": {"backend": "function", "callable": f"{here}:echoes"},
                    "large": {"backend": "function", "callable": f"{here}:answers"},
                },
                "planner": {"model": "planner"},
                "specialists": {"writer": writer},
                "routing": {"tiers": ["small", "large"], "calibrate": False},
                "memory": {"long_term": False},
            }
        )
    )


def test_an_echoed_system_prompt_is_a_failure_not_an_answer(tmp_path: Path) -> None:
    result = team(tmp_path, routed=False).run("Name a colour.")
    sub = result.subtasks[0]
    assert sub.status == "failed" and "repeats the specialist's system prompt" in (sub.error or "")
    assert result.status != "done"


def test_routing_escalates_an_echo_to_the_next_tier(tmp_path: Path) -> None:
    result = team(tmp_path, routed=True).run("Name a colour.")
    sub = result.subtasks[0]
    assert sub.status == "done" and sub.output == "Teal." and sub.tier == "large", sub
    assert len(sub.escalations) == 1 and "system prompt" in sub.escalations[0]
