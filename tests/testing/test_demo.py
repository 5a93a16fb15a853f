"""The demo models behind ``configs/offline.yaml``: a rule-based planner that makes real plans."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tessera import Team
from tessera.agents.planner import PlanOutcome, make_plan, validate_plan
from tessera.config import SpecialistConfig
from tessera.graphs.nodes import JoinDecision
from tessera.models.function import FunctionModel
from tessera.testing.demo import Part, echo, planner, split_task

from ..conftest import REPO, run_cli

TEAM = {
    "general": SpecialistConfig(description="Answers questions and writes short text.", model="m"),
    "translator": SpecialistConfig(description="Translates text between languages.", model="m"),
    "coder": SpecialistConfig(description="Writes and tests Python code.", model="m"),
}


def plan(task: str, max_subtasks: int = 8, specialists: dict[str, SpecialistConfig] = TEAM) -> PlanOutcome:
    outcome = asyncio.run(make_plan(FunctionModel(planner), task, specialists, max_subtasks=max_subtasks))
    assert not outcome.fallback and outcome.attempts == 1, outcome.problems
    assert validate_plan(outcome.plan, specialists, max_subtasks) == []
    return outcome


def shape(outcome: PlanOutcome) -> list[tuple[str, str, list[str]]]:
    return [(s.id, s.specialist, s.depends_on) for s in outcome.plan.subtasks]


@pytest.mark.parametrize(
    ("task", "parts"),
    [
        (
            "Summarize the report and then translate it to French",
            [("Summarize the report", False), ("Translate it to French", True)],
        ),
        ("Write a haiku. Draw a cat.", [("Write a haiku.", False), ("Draw a cat.", False)]),
        ("Fetch it; plot it, then mail it", [("Fetch it", False), ("Plot it", False), ("Mail it", True)]),
        (
            "Draft the docs. Then review them, e.g. for typos.",
            [("Draft the docs.", False), ("Review them, e.g. for typos.", True)],
        ),
        ("Do these:\n- fetch the data\n2. plot it", [("Fetch the data", False), ("Plot it", False)]),
        ("Say hi", [("Say hi", False)]),
    ],
)
def test_split_task(task: str, parts: list[tuple[str, bool]]) -> None:
    assert split_task(task) == [Part(text, chained) for text, chained in parts]


def test_then_chains_and_quotes_the_previous_result() -> None:
    outcome = plan("Summarize the report and then translate it to French")
    assert shape(outcome) == [("s1", "general", []), ("s2", "translator", ["s1"])]
    assert "{{s1}}" in outcome.plan.subtasks[1].instruction


def test_sentences_are_independent() -> None:
    outcome = plan("Write a haiku. Draw a cat.")
    assert shape(outcome) == [("s1", "general", []), ("s2", "general", [])]


def test_specialist_is_picked_by_word_overlap() -> None:
    outcome = plan("Write Python code to parse dates; translate the docs to German")
    assert [s.specialist for s in outcome.plan.subtasks] == ["coder", "translator"]


def test_the_prompts_limit_is_kept_and_no_part_is_dropped() -> None:
    outcome = plan("One. Two. Then three. Four.", max_subtasks=2)
    assert shape(outcome) == [("s1", "general", []), ("s2", "general", [])]
    assert outcome.plan.subtasks[1].instruction == "Two.; then Three.; Four."


def test_join_is_done_unless_a_subtask_failed() -> None:
    schema = JoinDecision.model_json_schema()
    ok = [{"role": "user", "content": "Task: t\n\nResults so far:\n[s1 / general] fine"}]
    assert json.loads(planner(ok, schema=schema))["done"] is True
    bad = "Task: t\n\nResults so far:\n[s1 / general] fine\n[s2 / coder] (failed: boom)"
    decision = JoinDecision.model_validate_json(planner([{"role": "user", "content": bad}], schema=schema))
    assert not decision.done and decision.reason == "s2 failed: boom"


def test_answer_joins_the_outputs_in_plan_order() -> None:
    results = "Task: t\n\nResults so far:\n[s2 / general] second\n[s1 / general] first\nline two\n[s3 / general] (skipped: dependency 's9' failed)"
    assert planner([{"role": "system", "content": "x"}, {"role": "user", "content": results}]) == (
        "first\nline two\n\nsecond"
    )


def test_echo_still_echoes() -> None:
    assert echo([{"role": "user", "content": "hi"}]) == "echo: hi"


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Team:
    monkeypatch.setenv("TESSERA_STATE_DIR", str(tmp_path / "state"))
    return Team.from_yaml(REPO / "configs" / "offline.yaml")


def test_offline_team_runs_a_real_plan(offline: Team) -> None:
    result = offline.run("Summarize the report and then translate it to French. Write a haiku.")
    assert result.status == "done" and result.replans == 0
    assert not any("fell back" in note or "rejected" in note for note in result.notes), result.notes
    assert [(s.id, s.status) for s in result.subtasks] == [("s1", "done"), ("s2", "done"), ("s3", "done")]
    assert "echo: Summarize the report" in result.subtasks[1].output  # {{s1}} was filled in
    assert result.answer.startswith("echo: Summarize the report\n\necho: Translate it to French")


def test_offline_run_from_the_shell(tmp_path: Path) -> None:
    out = run_cli(
        "run",
        "--team",
        "configs/offline.yaml",
        "--json",
        "Write a haiku. Draw a cat.",
        env={"TESSERA_STATE_DIR": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["status"] == "done" and not data["notes"]
    assert [s["instruction"] for s in data["plan"]["subtasks"]] == ["Write a haiku.", "Draw a cat."]


def test_the_old_module_path_still_names_the_demo_models() -> None:
    """Team files written by ``tessera init`` before the move say ``tessera.models.demo:planner``."""
    from tessera._imports import import_object

    assert import_object("tessera.models.demo:planner", where="t") is planner
    assert import_object("tessera.models.demo:echo", where="t") is echo
