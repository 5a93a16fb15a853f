"""Long-term memory: facts and summaries stored after a task, recalled into the planner's context."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tessera import Team, TeamConfig
from tessera.memory import recall
from tessera.memory.recall import LongTermMemory, stated_facts, summarize
from tests.conftest import run_cli
from tests.memory import recording


def config(tmp_path: Path, name: str = "mem", **memory: Any) -> TeamConfig:
    data = {
        "name": name,
        "state_dir": str(tmp_path / "state"),
        "models": {"m": {"backend": "function", "callable": "tests.memory.recording:planner"}},
        "planner": {"model": "m"},
        "specialists": {"general": {"description": "does anything", "model": "m"}},
        "memory": memory,
    }
    return TeamConfig.from_dict(data)


def demo_team_file(tmp_path: Path, **memory: Any) -> Path:
    """A team file on the demo planner (for tests that run the CLI)."""
    team_file = tmp_path / "team.yaml"
    team_file.write_text(
        json.dumps(
            {
                "name": "mem",
                "state_dir": str(tmp_path / "state"),
                "models": {"m": {"backend": "function", "callable": "tessera.testing.demo:planner"}},
                "planner": {"model": "m"},
                "specialists": {"general": {"description": "does anything", "model": "m"}},
                "memory": memory,
            }
        )
    )
    return team_file


@pytest.fixture(autouse=True)
def fresh_process_state() -> None:
    """Each test starts as a new process would: no open memories, nothing recorded."""
    recall._TEAMS.clear()
    recording.PLANNER_SAW.clear()


def test_stated_facts_are_the_sentences_that_state_something_to_keep() -> None:
    task = (
        "Remember that the staging database is called heron. Summarize the notes. "
        "My name is Ada Lovelace. What is my favourite colour? We use Postgres 16 in production."
    )
    assert stated_facts(task) == [
        "The staging database is called heron.",
        "My name is Ada Lovelace.",
        "We use Postgres 16 in production.",
    ]
    assert stated_facts("Summarize the release notes and translate them.") == []
    assert summarize("Fix   the\nbug", "Done: patched it") == "Task: Fix the bug | Answer: Done: patched it"
    assert len(summarize("t" * 50, "a" * 1000)) == 400


def test_memories_stored_by_one_team_instance_are_recalled_by_the_next(tmp_path: Path) -> None:
    first = Team(config(tmp_path))
    result = first.run("Remember that the staging database is called heron. Summarize the release notes.")
    assert result.status == "done"
    first.close()
    stored = LongTermMemory.for_team(config(tmp_path)).all()
    assert [(m.kind, m.text) for m in stored if m.kind == "fact"] == [
        ("fact", "The staging database is called heron.")
    ]
    assert any(m.kind == "summary" and "release notes" in m.text for m in stored)

    recall._TEAMS.clear()
    recording.PLANNER_SAW.clear()
    second = Team(config(tmp_path))  # a new instance on the same state dir
    result = second.run("Which staging database should the migration use?")
    assert "Relevant memories from earlier tasks" in recording.PLANNER_SAW[0]
    assert "The staging database is called heron." in recording.PLANNER_SAW[0]
    assert any(note.startswith("recalled") for note in result.notes)

    recording.PLANNER_SAW.clear()
    second.run("Write a haiku about autumn leaves.")  # shares no word with any memory
    assert "Relevant memories" not in recording.PLANNER_SAW[0]
    second.close()


def test_summaries_of_earlier_tasks_reach_the_planner_only_when_the_task_refers_back(tmp_path: Path) -> None:
    team = Team(config(tmp_path))
    team.run("Summarize the release notes.")
    recording.PLANNER_SAW.clear()
    team.run("Which release notes matter most?")  # shares words with the summary, but is a task of its own
    assert "Relevant memories" not in recording.PLANNER_SAW[0]
    recording.PLANNER_SAW.clear()
    team.run("What did you find in the release notes last time?")
    assert "Task: Summarize the release notes." in recording.PLANNER_SAW[0]
    team.close()


def test_writing_memories_loads_no_embedder_and_recall_loads_it_only_when_it_ranks(tmp_path: Path) -> None:
    loads: list[int] = []

    def loader() -> None:  # stands for load_embedder: None means lexical recall only
        loads.append(1)

    memory = LongTermMemory(tmp_path / "memory", "team:t", embedder=loader)
    memory.remember([("summary", "Task: Summarize the release notes | Answer: three fixes")])
    assert loads == []
    assert memory.recall("release notes", kinds=("fact",)) == [] and loads == []  # no fact to rank
    assert [m.kind for m in memory.recall("release notes")] == ["summary"] and loads == [1]
    memory.recall("release notes")
    assert loads == [1]  # loaded once


def test_memories_are_scoped_to_the_team(tmp_path: Path) -> None:
    Team(config(tmp_path, "alpha")).run("Remember that the alpha launch code is 1234.")
    recording.PLANNER_SAW.clear()
    Team(config(tmp_path, "beta")).run("What is the alpha launch code?")
    assert "Relevant memories" not in recording.PLANNER_SAW[0]
    assert LongTermMemory.for_team(config(tmp_path, "beta")).all() != []  # beta remembers its own task
    assert all("1234" not in m.text for m in LongTermMemory.for_team(config(tmp_path, "beta")).all())


def test_long_term_off_stores_and_recalls_nothing(tmp_path: Path) -> None:
    Team(config(tmp_path, long_term=False)).run("Remember that the password rotates monthly.")
    assert not (tmp_path / "state" / "memory").exists()


def test_memory_cli_lists_forgets_and_clears(tmp_path: Path) -> None:
    Team(config(tmp_path)).run("Remember that backups run at 02:00. Check the disk usage.")
    team_file = demo_team_file(tmp_path)
    listed = run_cli("memory", "list", "--team", str(team_file), "--json")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)
    fact = next(i for i in items if i["kind"] == "fact")
    assert fact["text"] == "Backups run at 02:00."
    forgot = run_cli("memory", "forget", fact["id"], "--team", str(team_file))
    assert forgot.returncode == 0 and fact["id"] in forgot.stdout
    again = run_cli("memory", "forget", fact["id"], "--team", str(team_file))
    assert again.returncode == 2 and again.stderr.strip().startswith("no memory")
    cleared = run_cli("memory", "clear", "--yes", "--team", str(team_file))
    left = len(items) - 1
    assert (
        cleared.returncode == 0 and f"forgot {left} {'memory' if left == 1 else 'memories'}" in cleared.stdout
    )
    assert LongTermMemory.for_team(config(tmp_path)).all() == []


def test_a_team_whose_embedder_cannot_load_does_not_report_plain_success(tmp_path: Path) -> None:
    team_file = demo_team_file(tmp_path, embedder=str(tmp_path / "no-embedder"))
    env = {"HF_HUB_OFFLINE": "1"}
    first = run_cli("run", "--team", str(team_file), "--json", "Say hello.", env=env)
    assert first.returncode == 0, (first.stdout, first.stderr)  # writing a memory needs no embedder
    out = run_cli("run", "--team", str(team_file), "--json", "Say hello again.", env=env)  # recall ranks
    assert out.returncode == 3, (out.stdout, out.stderr)
    result = json.loads(out.stdout)
    assert result["status"] == "partial" and result["answer"]
    assert any(
        n.startswith("long-term memory failed") and "no-embedder: no such embedder folder" in n
        for n in result["notes"]
    )
    text = run_cli("run", "--team", str(team_file), "Say hello again.", env=env)
    assert text.returncode == 3 and "no such embedder folder" in text.stderr


def test_the_same_task_run_again_is_remembered_once_and_nothing_empty_is(tmp_path: Path) -> None:
    team = Team(config(tmp_path))
    for task in ("Remember that backups run at 02:00. Check the disk usage.",) * 3:
        assert team.run(task).status == "done"
    newest = " remember that backups run at 02:00.  Check the disk usage"  # case, spacing, final period aside
    team.run(newest)
    memory = LongTermMemory.for_team(config(tmp_path))
    stored = memory.all()
    assert [(m.kind, m.text) for m in stored if m.kind == "fact"] == [("fact", "Backups run at 02:00.")]
    summaries = [m.text for m in stored if m.kind == "summary"]
    assert len(summaries) == 1 and summaries[0].startswith(summarize(newest, "") + " | Answer: "), summaries
    assert memory.remember([("summary", summarize("-", "")), ("summary", "Task: "), ("fact", " . ")]) == []
    assert len(memory.all()) == 2


def test_recall_is_a_span_of_the_planning_and_not_overhead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 19, finding 3: recall has its own span, inside planning; its time is not framework overhead."""
    team = Team(config(tmp_path))
    team.run("Remember that backups run at 02:00.")
    real = recall.recall_context

    def slow(config: TeamConfig, task: str) -> list[recall.Memory]:
        time.sleep(0.3)
        return real(config, task)

    monkeypatch.setattr(recall, "recall_context", slow)
    result = team.run("When do the backups run?")
    assert result.trace is not None and any(n.startswith("recalled") for n in result.notes)
    [span] = [s for s in result.trace.spans if s.kind == "recall"]
    assert span.parent == "planning@0" and span.seconds >= 0.3 and span.attrs["memories"] >= 1
    timings = result.timings
    assert timings.recall_s == pytest.approx(span.seconds)
    assert timings.planning_s >= span.seconds
    assert timings.overhead_s < 0.15, timings


def test_a_new_process_recalls_without_opening_chroma_yet_sees_every_write(tmp_path: Path) -> None:
    """Issue 19, finding 3: recall read from the copy saved at each write, not through chromadb (about 1 s
    of imports per run); a write that bypassed the copy makes recall read Chroma again."""
    Team(config(tmp_path)).run("Remember that the staging database is called heron.")
    team_file = demo_team_file(tmp_path)
    script = (
        "import sys, json\n"
        "from tessera.config import load_team\n"
        "from tessera.memory.recall import recall_context\n"
        f"found = recall_context(load_team({str(team_file)!r}), 'Which staging database?')\n"
        "print(json.dumps(['chromadb' in sys.modules, [m.text for m in found]]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    imported, texts = json.loads(proc.stdout)
    assert "The staging database is called heron." in texts
    assert not imported

    other = LongTermMemory.for_team(config(tmp_path))  # a writer that does not update the copy
    other._collection.add(
        ids=["x1"],
        documents=["The staging database moved to egret."],
        embeddings=[[1.0]],
        metadatas=[{"kind": "fact", "scope": "team:mem", "created_at": time.time(), "thread": ""}],
    )
    recall._TEAMS.clear()
    found = recall.recall_context(config(tmp_path), "Which staging database?")
    assert "The staging database moved to egret." in [m.text for m in found]
