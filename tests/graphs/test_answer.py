"""The answer covers every part of the task and states the subtasks' results, not the model's memory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tessera import Team, TeamConfig

HERE = "tests.graphs.test_answer"
SEEN: list[str] = []


def plan(messages: list[dict[str, Any]], **_: Any) -> str:
    return json.dumps({"subtasks": [
        {"id": "s1", "specialist": "coder", "instruction": "Compute the 20th Fibonacci number."},
        {"id": "s2", "specialist": "general", "instruction": "Explain the Fibonacci sequence in one sentence."},
    ]})  # fmt: skip


def compute(messages: list[dict[str, Any]], **_: Any) -> str:
    return (
        "6765"
        if "Fibonacci number" in messages[-1]["content"]
        else "Each number is the sum of the two before it."
    )


def forgetful_writer(messages: list[dict[str, Any]], **_: Any) -> str:
    SEEN.append(messages[-1]["content"])
    return "The Fibonacci sequence: each number is the sum of the two before it. The 20th is 4181."


def test_an_answer_covers_both_parts_with_the_computed_value(tmp_path: Path) -> None:
    config = TeamConfig.from_dict(
        {
            "name": "answer",
            "state_dir": str(tmp_path),
            "models": {
                "planner": {"backend": "function", "callable": f"{HERE}:plan"},
                "worker": {"backend": "function", "callable": f"{HERE}:compute"},
                "writer": {"backend": "function", "callable": f"{HERE}:forgetful_writer"},
            },
            "planner": {"model": "planner"},
            "answer": {"model": "writer"},
            "specialists": {
                "coder": {"description": "computes", "model": "worker"},
                "general": {"description": "explains", "model": "worker"},
            },
            "memory": {"long_term": False},
        }
    )
    result = Team(config).run("Compute the 20th Fibonacci number, then explain the sequence in one sentence.")
    assert result.status == "done"
    # the writer saw each part's instruction beside its result
    assert "- s1 (coder): Compute the 20th Fibonacci number." in SEEN[-1] and "[s1 / coder] 6765" in SEEN[-1]
    # it recalled the wrong number from memory; the computed one is in the answer all the same
    assert "6765" in result.answer and "sum of the two before it" in result.answer
    assert result.answer.endswith("s1 (coder): 6765")
