"""``tessera run`` on a terminal, through pexpect: asking about a plan, live progress; and its notes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_team
from tests.test_repl import TASK, Screen, fixing_editor, repl_team, terminal_env

pexpect = pytest.importorskip("pexpect", reason="the terminal tests drive a pty: pip install pexpect")


@pytest.fixture
def approving(tmp_path: Path) -> Path:
    """The chat tests' team, asking before each plan runs."""
    return repl_team(tmp_path / "team.yaml", planner={"model": "planner", "approve": True})


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return terminal_env(tmp_path)


def ended(screen: Screen) -> tuple[str, int]:
    """Everything the command printed after the last wait, and its exit code."""
    screen.child.expect(pexpect.EOF, timeout=30)
    screen.raw += screen.child.before or ""
    screen.child.close()
    return screen.text()[screen.pos :], screen.child.exitstatus


def test_an_edit_that_cannot_run_is_asked_about_again_with_the_edits_kept(
    approving: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """Issue 19, finding 6: a bad edit no longer ends the run (exit 2, no thread id); editing again
    reopens what was edited."""
    screen = Screen(approving, {**env, "EDITOR": fixing_editor(tmp_path)}, TASK, command="run")
    try:
        screen.wait("accept, edit or reject?")
        screen.child.send("e\r")
        screen.wait("the edited plan cannot run: s2: unknown specialist 'nobody'")
        screen.wait("accept, edit or reject?")
        screen.child.send("e\r")
        out, code = ended(screen)
        assert code == 0 and "did: Write a limerick about tea." in out, out
        assert "note: plan edited by the user" in out, out
    finally:
        screen.close()


@pytest.mark.parametrize("leave", ["ctrl-d", "ctrl-c"])
def test_leaving_the_plan_question_says_how_to_resume(
    approving: Path, env: dict[str, str], leave: str
) -> None:
    """Issue 19, finding 6: the run stops at the question, and says which thread to resume."""
    screen = Screen(approving, env, TASK, command="run")
    try:
        screen.wait("accept, edit or reject?")
        if leave == "ctrl-d":
            screen.child.sendeof()
        else:
            screen.child.sendintr()
        out, code = ended(screen)
    finally:
        screen.close()
    found = re.search(r"plan awaits approval: tessera resume (\w+) --accept", out)
    assert code == 130 and found, out
    resumed = run_cli("resume", "--team", str(approving), found.group(1), "--accept", env=env)
    assert resumed.returncode == 0 and "did: Write a haiku about tea." in resumed.stdout, resumed.stderr


def test_a_terminal_sees_what_runs_while_it_runs(tmp_path: Path, env: dict[str, str]) -> None:
    """Issue 19, finding 4: between the plan line and the end, a status line says what runs, for how long."""
    team = repl_team(tmp_path / "team.yaml", worker="tests.fakes:sleeper")  # 0.5 s a subtask
    screen = Screen(team, {**env, "TESSERA_QUIET": "0"}, TASK, command="run")
    try:
        screen.wait("plan: s1:poet, s2:general")
        screen.wait("running s1 poet")
        screen.wait("running s2 general")
        out, code = ended(screen)
    finally:
        screen.close()
    assert code == 0 and "slept: Write a haiku about tea." in out, out
    assert re.search(r"s2 general +worker +done", out) and "done: total" in out, out


def test_notes_are_shown_whatever_the_outcome_and_pipes_get_no_live_line(tmp_path: Path) -> None:
    """Issue 19, finding 4: why a plan fell back is said on a run paused for approval too (not only with
    --json); and without a terminal the output is the plain lines it always was."""
    team = write_team(
        tmp_path / "team.yaml",
        {"m": {"backend": "function", "callable": "tests.fakes:env_planner"}},
        planner={"model": "m", "approve": True},
    )
    env = {"TESSERA_TEST_PLAN": "not a plan", "TESSERA_QUIET": "0"}
    out = run_cli("run", "--team", str(team), "Say hello.", env=env)
    assert out.returncode == 4, out.stderr
    assert "note: planner failed twice; fell back to a single subtask" in out.stderr, out.stderr
    assert "\x1b[" not in out.stderr + out.stdout and "planning…" not in out.stderr
