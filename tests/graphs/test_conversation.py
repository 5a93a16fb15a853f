"""Short-term memory: a new task on a thread sees that thread's earlier turns."""

from __future__ import annotations

from pathlib import Path

from tessera import Team, TeamConfig
from tessera.graphs.state import MAX_TURNS
from tests.memory import recording


def team(state_dir: Path) -> Team:
    return Team(
        TeamConfig.from_dict(
            {
                "name": "chat",
                "state_dir": str(state_dir),
                "models": {"m": {"backend": "function", "callable": "tests.memory.recording:planner"}},
                "planner": {"model": "m"},
                "specialists": {"general": {"description": "does anything", "model": "m"}},
                "memory": {"long_term": False},
            }
        )
    )


def test_a_follow_up_on_the_same_thread_sees_the_earlier_turn(tmp_path: Path) -> None:
    first = team(tmp_path).run("Name three colours.", thread_id="c1")
    assert first.status == "done" and first.answer
    recording.PLANNER_SAW.clear()
    again = team(tmp_path)  # a new instance: the turns come from the checkpoint, not from memory
    again.run("Now sort them.", thread_id="c1")
    seen = recording.PLANNER_SAW[-1]
    assert seen.startswith("Conversation so far:\nUser: Name three colours.\nAssistant: ")
    assert first.answer.strip()[:40] in seen
    assert seen.endswith("Task: Now sort them.")

    recording.PLANNER_SAW.clear()
    again.run("Unrelated question.", thread_id="other")
    again.run("No thread at all.")
    assert all("Conversation so far" not in s for s in recording.PLANNER_SAW)


def test_only_the_last_turns_are_kept(tmp_path: Path) -> None:
    t = team(tmp_path)
    for i in range(MAX_TURNS + 2):
        t.run(f"Task number {i}.", thread_id="long")
    recording.PLANNER_SAW.clear()
    t.run("Last one.", thread_id="long")
    seen = recording.PLANNER_SAW[-1]
    assert seen.count("User: ") == MAX_TURNS
    assert "Task number 1." not in seen and f"Task number {MAX_TURNS + 1}." in seen
