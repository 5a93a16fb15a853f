"""The planner reads small models' quotes as meant: no repair round trip for a self-quote or a missing dependency."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tessera.agents._plan_prompt import is_single_step
from tessera.agents.planner import make_plan, planner_messages, validate_plan
from tessera.config import SpecialistConfig
from tessera.models.function import FunctionModel
from tessera.types import Subtask

TEAM = {
    "coder": SpecialistConfig(description="Writes and runs Python code.", model="m"),
    "general": SpecialistConfig(description="Explains things.", model="m"),
}


def planner_replying(*subtasks: dict[str, Any]) -> tuple[FunctionModel, list[int]]:
    calls: list[int] = []

    def reply(messages: Any, **_: Any) -> str:
        calls.append(len(messages))
        return json.dumps({"subtasks": list(subtasks)})

    return FunctionModel(reply), calls


def plan_of(model: FunctionModel, *, stream: bool = False) -> tuple[Any, list[Subtask]]:
    started: list[Subtask] = []
    outcome = asyncio.run(
        make_plan(model, "task", TEAM, max_subtasks=4, on_subtask=started.append if stream else None)
    )
    return outcome, started


def test_a_plan_that_quotes_itself_runs_without_a_repair() -> None:
    model, calls = planner_replying(
        {
            "id": "s1",
            "specialist": "coder",
            "instruction": "Compute fib(20) and print {{s1}}",
            "depends_on": [],
        },
        {"id": "s2", "specialist": "general", "instruction": "Explain {{s2}} the sequence", "depends_on": []},
    )
    outcome, _ = plan_of(model)
    assert outcome.attempts == 1 and not outcome.fallback and len(calls) == 1
    assert [s.instruction for s in outcome.plan.subtasks] == [
        "Compute fib(20) and print",
        "Explain  the sequence",
    ]
    assert validate_plan(outcome.plan, TEAM, 4) == []


def test_a_quote_of_an_earlier_subtask_becomes_a_dependency() -> None:
    model, calls = planner_replying(
        {"id": "s1", "specialist": "coder", "instruction": "Compute fib(20)", "depends_on": []},
        {"id": "s2", "specialist": "general", "instruction": "Explain {{s1}}", "depends_on": []},
    )
    for stream in (False, True):
        outcome, started = plan_of(model, stream=stream)
        assert outcome.attempts == 1
        assert outcome.plan.subtasks[1].depends_on == ["s1"]
        if stream:  # an early start sees the dependency too, so it waits for s1
            assert [s.depends_on for s in started] == [[], ["s1"]]


def test_a_quote_of_a_later_subtask_is_still_rejected() -> None:
    model, calls = planner_replying(
        {"id": "s1", "specialist": "coder", "instruction": "Use {{s2}}", "depends_on": []},
        {"id": "s2", "specialist": "general", "instruction": "Explain", "depends_on": []},
    )
    outcome, _ = plan_of(model)
    assert outcome.fallback and len(calls) == 2
    assert "s1: quotes {{s2}} but does not depend on 's2'" in outcome.problems


class GrammarPlanner(FunctionModel):
    """A function planner that claims grammar decoding, so the planner holds it to the plan schema."""

    constrained_decoding: ClassVar[bool] = True


def test_examples_use_the_teams_own_specialists() -> None:
    team = {
        "mycoder": SpecialistConfig(description="Codes.", kind="coder", model="m"),
        "chat": SpecialistConfig(description="Talks.", model="m"),
    }
    system = str(planner_messages("t", team, max_subtasks=3)[0].content)
    assert "Task: What is 17 factorial?" in system
    assert '"specialist": "mycoder"' in system and '"specialist": "chat"' in system
    assert "coder" not in system.replace("mycoder", "")  # only this team's names
    assert "Examples:" not in str(planner_messages("t", team, max_subtasks=3, examples=False)[0].content)


def test_a_team_with_an_asr_tool_agent_is_told_where_recordings_go() -> None:
    team = {
        "chat": SpecialistConfig(description="Talks.", model="m"),
        "ears": SpecialistConfig(description="Hears.", kind="tool", tool="asr"),
    }
    system = str(planner_messages("t", team, max_subtasks=3)[0].content)
    assert "Transcribing a recording (a wav, flac, mp3 or ogg file) goes to ears." in system
    del team["ears"]
    assert "Transcribing" not in str(planner_messages("t", team, max_subtasks=3)[0].content)


@pytest.mark.parametrize(
    ("task", "single"),
    [
        ("What is 17 factorial?", True),
        ("Compute the sum of the squares of 1 to 100.", True),
        ("Read the text in /tmp/a.png and say it aloud.", False),
        ("Compute fib(20), then explain what it is.", False),
        ("Translate 'cat' into French. Then into German.", False),
        ("What is the capital of Peru? Answer in one word.", True),
        ("What is 2**10? Reply with the number only.", True),
        ("What is 2**10? Answer it, and say it aloud.", False),
        ("What is 2**10? Explain it to a child.", False),
        ("What is 2**10? Answer in one word. Explain it too.", False),
        ("", False),
        ("x" * 400, False),
    ],
)
def test_is_single_step(task: str, single: bool) -> None:
    assert is_single_step(task) is single


def test_the_fast_path_only_names_the_specialist() -> None:
    schemas: list[Any] = []

    def planner(messages: Any, schema: Any = None, **_: Any) -> str:
        schemas.append(schema)
        if set(schema["properties"]) == {"specialist"}:
            return json.dumps({"specialist": "coder"})
        return json.dumps({"subtasks": [
            {"id": "s1", "specialist": "coder", "instruction": "compute", "depends_on": []},
            {"id": "s2", "specialist": "general", "instruction": "explain {{s1}}", "depends_on": ["s1"]},
        ]})  # fmt: skip

    model = GrammarPlanner(planner)
    one = asyncio.run(make_plan(model, "What is 17 factorial?", TEAM, max_subtasks=4, fast_path=True))
    assert one.fast and one.plan.subtasks[0].instruction == "What is 17 factorial?"
    assert schemas[-1]["properties"]["specialist"]["enum"] == ["coder", "general"]
    two = asyncio.run(make_plan(model, "Compute it, then explain it.", TEAM, max_subtasks=4, fast_path=True))
    assert not two.fast and len(two.plan.subtasks) == 2
    assert schemas[-1]["properties"]["subtasks"]["prefixItems"][1]["properties"]["id"] == {"const": "s2"}
    off = asyncio.run(make_plan(model, "What is 17 factorial?", TEAM, max_subtasks=4, fast_path=False))
    assert not off.fast


def test_a_grammar_bound_plan_is_runnable_by_construction(tiny_gguf: Path) -> None:
    """A random-weight model under the plan grammar: every plan is valid at the first try."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    from tessera.models.llama_cpp import LlamaCppChatModel

    for seed in range(4):
        model = LlamaCppChatModel(model_id="tiny", path=tiny_gguf, n_ctx=4096, temperature=1.0, seed=seed)
        assert model.constrained_decoding
        outcome = asyncio.run(make_plan(model, "Do the thing, then the other.", TEAM, max_subtasks=3))
        assert not outcome.fallback and outcome.attempts == 1, outcome.problems
        assert validate_plan(outcome.plan, TEAM, 3) == []
        ids = [s.id for s in outcome.plan.subtasks]
        assert ids == [f"s{k}" for k in range(1, len(ids) + 1)]
