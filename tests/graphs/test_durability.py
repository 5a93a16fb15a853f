"""Checkpoints, resume after a kill, and plan approval (LangGraph interrupt) with the real graph."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tessera import Team
from tessera.errors import UserError
from tessera.events import Done, PlanReady
from tessera.types import Approval, Plan

from .. import fakes
from ..conftest import REPO, run_cli, write_team
from .conftest import plan_for, sub, team


def counted_team(tmp_path: Path, plan: list[dict[str, Any]]) -> tuple[Path, dict[str, str]]:
    """A team file whose worker logs every call, and the env that makes its CLI runs use ``plan``."""
    team_file = write_team(
        tmp_path / "team.yaml",
        {
            "planner": {"backend": "function", "callable": "tests.fakes:env_planner"},
            "worker": {"backend": "function", "callable": "tests.fakes:counting"},
        },
        specialists={"general": {"description": "does anything", "model": "worker"}},
    )
    env = {
        "TESSERA_TEST_CALLS": str(tmp_path / "calls.log"),
        "TESSERA_TEST_PLAN": json.dumps({"subtasks": plan}),
    }
    return team_file, env


def calls(env: dict[str, str]) -> list[str]:
    return Path(env["TESSERA_TEST_CALLS"]).read_text().splitlines()


def test_a_killed_run_resumes_without_rerunning_finished_subtasks(tmp_path: Path) -> None:
    plan = [sub("a", "quick A"), sub("b", "SLOW B"), sub("c", "join {{a}} and {{b}}", ["a", "b"])]
    team_file, env = counted_team(tmp_path, plan)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tessera.cli", "run", "--team", str(team_file), "--thread", "k1", "the task"],
        cwd=REPO,
        env={**os.environ, **env, "TESSERA_TEST_SLOW": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline, seen = time.monotonic() + 30, ""
        while not any(line.split()[:1] == ["a"] and "done" in line for line in seen.splitlines()):
            assert time.monotonic() < deadline, f"subtask a never finished: {seen!r}"
            if select.select([proc.stderr], [], [], 0.5)[0]:  # read the fd: a buffered readline could
                seen += os.read(proc.stderr.fileno(), 65536).decode()  # hold a line select never reports
        # the finished subtask is in the checkpoint (its write lands just after the progress line)
        observer = Team.from_yaml(team_file)
        while (snapshot := observer.get_run("k1")) is None or "a" not in {s.id for s in snapshot.subtasks}:
            assert time.monotonic() < deadline, "subtask a never reached the checkpoint"
            time.sleep(0.05)
        assert snapshot.status == "interrupted"
        assert sorted(calls(env)) == ["SLOW B", "quick A"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
        proc.wait(10)

    out = run_cli("resume", "--team", str(team_file), "--json", "k1", env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    by_id = {s["id"]: s for s in result["subtasks"]}
    assert {i: s["status"] for i, s in by_id.items()} == {"a": "done", "b": "done", "c": "done"}
    assert by_id["a"]["started"] == next(s.started for s in snapshot.subtasks if s.id == "a")
    assert by_id["c"]["output"] == "did: join did: quick A and did: SLOW B"
    assert sorted(calls(env)) == ["SLOW B", "SLOW B", "join did: quick A and did: SLOW B", "quick A"]
    # resuming a finished run returns its result and runs nothing
    again = run_cli("resume", "--team", str(team_file), "--json", "k1", env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["answer"] == result["answer"]
    assert len(calls(env)) == 4


def test_a_decision_for_a_run_that_is_not_paused_is_a_usage_error(tmp_path: Path) -> None:
    team_file, env = counted_team(tmp_path, [sub("a", "first")])
    assert run_cli("run", "--team", str(team_file), "--thread", "d1", "task", env=env).returncode == 0
    for decision in (["--accept"], ["--reject", "no"]):
        out = run_cli("resume", "--team", str(team_file), *decision, "d1", env=env)
        assert out.returncode == 2 and out.stderr.strip() == (
            "thread 'd1' has finished: it has no plan waiting to be accepted, rejected or edited"
        )
    assert calls(env) == ["first"]


def test_resume_of_a_finished_run_shows_its_result_and_says_so(tmp_path: Path) -> None:
    team_file, env = counted_team(tmp_path, [sub("a", "first")])
    assert run_cli("run", "--team", str(team_file), "--thread", "f1", "task", env=env).returncode == 0
    out = run_cli("resume", "--team", str(team_file), "f1", env=env)
    assert out.returncode == 0 and out.stdout.strip() == "did: first", out
    assert "note: thread 'f1' had finished (done): nothing to resume" in out.stderr
    assert calls(env) == ["first"]


def test_resume_of_an_unknown_thread_is_a_usage_error(tmp_path: Path) -> None:
    team_file, env = counted_team(tmp_path, [sub("a")])
    out = run_cli("resume", "--team", str(team_file), "nope", env=env)
    assert out.returncode == 2
    assert (
        out.stderr.strip() == f"no run with thread id 'nope' in {tmp_path / 'state' / 'checkpoints.sqlite'}"
    )


def test_a_new_task_on_an_old_thread_starts_clean(state_dir: Path) -> None:
    t = team(state_dir=state_dir)
    first = t.run(plan_for("first task", sub("a", "one"), sub("b", "FAIL")), thread_id="th")
    assert any(s.status == "failed" for s in first.subtasks) and first.notes == []
    second = t.run(plan_for("second task", sub("x", "two")), thread_id="th")
    assert [s.id for s in second.subtasks] == ["x"] and second.answer == "did: two"
    assert second.replans == 0
    assert (state_dir / "checkpoints.sqlite").is_file()


def approving(state_dir: Path) -> Team:
    return team(state_dir=state_dir, extra={"planner": {"approve": True}})


def test_approve_accept_from_a_callback() -> None:
    seen: list[Plan] = []

    def approve(plan: Plan) -> Approval:
        seen.append(plan)
        return Approval.accept()

    result = approving(Path("unused")).run(plan_for("ok?", sub("a", "hello")), approve=approve)
    assert [s.id for s in seen[0].subtasks] == ["a"]
    assert result.status == "done" and result.answer == "did: hello"


def test_approve_edit_runs_the_edited_plan(state_dir: Path) -> None:
    t = approving(state_dir)
    paused = t.run(plan_for("edit me", sub("a", "original")), thread_id="e1")
    assert paused.status == "awaiting_approval" and paused.subtasks == []
    assert paused.plan is not None and paused.plan.subtasks[0].instruction == "original"
    assert t.get_run("e1").status == "awaiting_approval"  # type: ignore[union-attr]
    edited = Approval.edit({"subtasks": [sub("a", "edited"), sub("b", "more {{a}}", ["a"])]})
    result = Team(t.config, models=t.models).resume("e1", edited)  # a fresh Team: the pause lives in SQLite
    assert result.status == "done"
    assert [s.output for s in result.subtasks] == ["did: edited", "did: more did: edited"]
    assert "plan edited by the user" in result.notes


def test_an_invalid_edit_is_refused_and_the_run_keeps_waiting(state_dir: Path) -> None:
    t = approving(state_dir)
    t.run(plan_for("bad edit", sub("a")), thread_id="e2")
    with pytest.raises(UserError, match="edited plan cannot run: a: unknown specialist 'ghost'"):
        t.resume("e2", Approval.edit({"subtasks": [sub("a", who="ghost")]}))
    assert t.get_run("e2").status == "awaiting_approval"  # type: ignore[union-attr]
    assert t.resume("e2", Approval.accept()).status == "done"


def test_approve_reject_ends_the_run_without_running_anything(state_dir: Path) -> None:
    t = approving(state_dir)
    result = t.run(plan_for("no", sub("a", "FAIL if run")), approve=lambda plan: Approval.reject("too risky"))
    assert result.status == "rejected" and result.subtasks == [] and result.answer == ""
    assert "plan rejected by the user: too risky" in result.notes


def test_an_unnamed_paused_run_resumes_in_the_same_process() -> None:
    t = approving(Path("unused"))
    paused = t.run(plan_for("later", sub("a", "x")))
    assert paused.status == "awaiting_approval" and paused.thread_id
    assert t.resume(paused.thread_id, Approval.accept()).answer == "did: x"


def test_every_plan_of_a_replan_is_approved(state_dir: Path) -> None:
    def plan(messages: list[dict[str, Any]]) -> dict[str, Any]:
        if "Replan because" in str(messages):
            return {"subtasks": [sub("a2", "fixed")]}
        return {"subtasks": [sub("a", "FAIL")]}

    fakes.PLANS["please replan approved"] = plan
    seen: list[str] = []
    result = approving(state_dir).run(
        "please replan approved", approve=lambda p: seen.append(p.subtasks[0].id) or Approval.accept()
    )
    assert seen == ["a", "a2"] and result.replans == 1 and result.answer == "did: fixed"


def test_stream_stops_with_done_when_a_plan_awaits_approval(state_dir: Path) -> None:
    events = list(approving(state_dir).stream(plan_for("stream wait", sub("a")), thread_id="s1"))
    assert [type(e) for e in events] == [PlanReady, Done]
    assert isinstance(events[-1], Done) and events[-1].result.status == "awaiting_approval"


def test_cli_approval_by_resume_flags(tmp_path: Path) -> None:
    team_file, env = counted_team(tmp_path, [sub("a", "first")])
    data = {
        **__import__("yaml").safe_load(team_file.read_text()),
        "planner": {"model": "planner", "approve": True},
    }
    team_file.write_text(__import__("yaml").safe_dump(data))
    out = run_cli("run", "--team", str(team_file), "--thread", "c1", "task", env=env)
    assert out.returncode == 4, out.stderr  # paused: its own exit code
    assert "plan awaits approval: tessera resume c1 --accept | --reject REASON | --edit FILE" in out.stderr
    assert not Path(env["TESSERA_TEST_CALLS"]).exists()

    edit = tmp_path / "plan.json"
    edit.write_text(json.dumps({"subtasks": [sub("z", "edited")]}))
    out = run_cli("resume", "--team", str(team_file), "--edit", str(edit), "--json", "c1", env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["answer"] == "did: edited" and calls(env) == ["edited"]

    run_cli("run", "--team", str(team_file), "--thread", "c2", "task", env=env)
    out = run_cli("resume", "--team", str(team_file), "--reject", "no thanks", "c2", env=env)
    assert out.returncode == 1 and calls(env) == ["edited"]

    edit.write_text('{"subtasks": [{"id": "z"}]}')
    run_cli("run", "--team", str(team_file), "--thread", "c3", "task", env=env)
    out = run_cli("resume", "--team", str(team_file), "--edit", str(edit), "c3", env=env)
    assert out.returncode == 2 and out.stderr.strip() == f"{edit}: subtasks.0.specialist: Field required"
