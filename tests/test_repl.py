"""``tessera chat`` for real, in a pseudo-terminal: the live plan view, slash commands, Ctrl-C, history.

Each test drives ``python -m tessera.cli chat`` through pexpect on a team of function models
(``tests/repl_fakes.py``) and waits for text on the screen (ANSI stripped), never for a fixed time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, run_cli, write_team

pexpect = pytest.importorskip("pexpect", reason="the REPL tests drive a terminal: pip install pexpect")

PROMPT = "repl>"  # prompt_toolkit moves the cursor past the space instead of printing it
UP = "\x1b[A"
ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][A-Za-z0-9]|[=>78DEHM])")
TASK = "Write a haiku about tea. Then count its words."


class Screen:
    """A REPL in a pseudo-terminal: send keys, wait for text to appear in what it printed since last time."""

    def __init__(self, team: Path, env: dict[str, str], *args: str, command: str = "chat") -> None:
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "tessera.cli", command, "--team", str(team), *args],
            cwd=str(REPO),
            env=env,
            dimensions=(50, 160),
            encoding="utf-8",
            codec_errors="replace",
        )
        self.raw = ""
        self.pos = 0

    def text(self) -> str:
        return ANSI.sub("", self.raw).replace("\r", "")

    def wait(self, expected: str, timeout: float = 20) -> str:
        """Wait for ``expected``; return everything printed from the last wait up to it."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            found = text.find(expected, self.pos)
            if found >= 0:
                seen, self.pos = text[self.pos : found + len(expected)], found + len(expected)
                return seen
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"{expected!r} not seen in {timeout}s; after the last wait:\n{text[self.pos :]}"
                )
            try:
                self.raw += self.child.read_nonblocking(65536, timeout=min(left, 0.5))
            except pexpect.TIMEOUT:
                pass
            except pexpect.EOF as exc:
                raise AssertionError(f"the REPL ended before {expected!r}:\n{text[self.pos :]}") from exc

    def ask(self, line: str, until: str) -> str:
        """Send one line, wait for ``until`` and then the next prompt; return the output in between."""
        self.child.send(line + "\r")
        seen = self.wait(until)
        return seen + self.wait(PROMPT)

    def run(self, task: str) -> str:
        """Send a task and return its output up to the footer line and the next prompt."""
        return self.ask(task, " · total ")

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


@pytest.fixture
def team(tmp_path: Path) -> Path:
    return repl_team(tmp_path / "team.yaml")


def repl_team(path: Path, worker: str = "tests.repl_fakes:worker", **sections: Any) -> Path:
    """The demo planner and two specialists on ``worker``; ``sections`` go into the team file."""
    models = {
        "planner": {"backend": "function", "callable": "tests.repl_fakes:planner"},
        "worker": {"backend": "function", "callable": worker},
    }
    return write_team(
        path,
        models,
        name="repl",
        specialists={
            "general": {"description": "Answers questions and does anything else.", "model": "worker"},
            "poet": {"description": "Writes poems, haiku and verse.", "model": "worker"},
        },
        **sections,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return terminal_env(tmp_path)


def terminal_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a command in the pty: a terminal, no editor, this checkout on the path."""
    clean = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TESSERA_TEAM", "EDITOR", "VISUAL")}
    return {
        **clean,
        "TERM": "xterm-256color",
        "PROMPT_TOOLKIT_NO_CPR": "1",  # pexpect is no terminal emulator: nothing answers position queries
        "REPL_PLANNER_LOG": str(tmp_path / "planner.log"),
        "PYTHONPATH": str(REPO),
    }


@pytest.fixture
def screen(team: Path, env: dict[str, str]) -> Iterator[Screen]:
    repl = Screen(team, env)
    repl.wait("/help for commands, Ctrl-D to exit")
    repl.wait(PROMPT)
    yield repl
    repl.close()


def planner_saw(env: dict[str, str]) -> list[str]:
    lines = Path(env["REPL_PLANNER_LOG"]).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_task_shows_plan_tree_answer_and_footer(screen: Screen) -> None:
    out = screen.run(TASK)
    assert re.search(r"s1 poet\s+done\s+worker", out), out
    assert re.search(r"s2 general\s+done\s+worker", out), out
    assert "tok/s" in out
    assert "did: Write a haiku about tea." in out  # the answer, composed from the subtasks' outputs
    assert re.search(r"done · total \d+\.\d\ds · planning \d+\.\d\ds · overhead \d+\.\d+s", out), out


def test_slash_commands(screen: Screen) -> None:
    out = screen.ask("/plan", "no plan yet")
    screen.run(TASK)
    out = screen.ask("/plan", "s2 general")
    assert "plan for: " + TASK in out and "s1 poet" in out
    out = screen.ask("/trace", "critical path")
    assert re.search(r"planning\s+\d+\.\d{3}s", out), out
    assert re.search(r"s1\s+poet\s+worker\s+done\s+\+\d+\.\d\ds", out), out
    assert re.search(r"critical path\s+planning \d+\.\d\ds → s1 \d+\.\d\ds → s2 \d+\.\d\ds → answer", out), (
        out
    )
    assert re.search(r"worker .*#.* s1\* s2\*", out), out  # the timeline: a row per model, decode as #
    out = screen.ask("/team", "approve plans: off")
    assert re.search(r"poet\s+general\s+worker\s+Writes poems", out), out
    assert re.search(r"worker\s+function\s+tests\.repl_fakes:worker", out), out
    out = screen.ask("/frobnicate now", "/help lists them")
    assert "unknown command /frobnicate; /help lists them" in out
    screen.ask("/help", "/exit")


def test_model_mode_save_and_exit(screen: Screen, tmp_path: Path) -> None:
    screen.run(TASK)
    screen.child.send("/model worker\r")
    screen.wait("talking to worker directly")
    screen.wait("repl[worker]>")
    screen.child.send("Hello model.\r")
    out = screen.wait(" tokens in ") + screen.wait("repl[worker]>")
    assert "did: Hello model." in out and re.search(r"worker: \d+ tokens in \d+\.\d\ds", out), out
    screen.ask("/model", "back to the team")
    saved = tmp_path / "chat.md"
    screen.ask(f"/save {saved}", "saved 2 turns")
    text = saved.read_text(encoding="utf-8")
    assert f"## You\n\n{TASK}\n\n## repl\n\ndid: Write a haiku" in text
    assert "## You\n\nHello model.\n\n## worker\n\ndid: Hello model." in text
    screen.child.send("/exit\r")
    screen.child.expect(pexpect.EOF, timeout=20)


def test_follow_up_sees_the_previous_turn(screen: Screen, env: dict[str, str]) -> None:
    screen.run(TASK)
    screen.run("What did I ask you before?")
    first, second = planner_saw(env)
    assert "Conversation so far:" not in first
    assert "Conversation so far:" in second
    assert f"User: {TASK}" in second and "Assistant: " in second


def test_ctrl_c_cancels_the_run_and_keeps_the_repl(screen: Screen, env: dict[str, str]) -> None:
    screen.child.sendcontrol("c")  # at an empty prompt: just a new prompt
    screen.wait(PROMPT)
    screen.child.send("Take your time: SLOW work.\r")
    screen.wait("running")
    started = time.monotonic()
    screen.child.sendcontrol("c")
    out = screen.wait("cancelled: the run was stopped")
    screen.wait(PROMPT)
    assert time.monotonic() - started < 10, "the cancelled run should stop at once, not when it ends"
    assert re.search(r"s1 general\s+cancelled\s+worker", out), out
    out = screen.run(TASK)
    assert re.search(r"s2 general\s+done", out), out
    assert len(planner_saw(env)) == 2


def test_history_persists_across_sessions(team: Path, env: dict[str, str], tmp_path: Path) -> None:
    first = Screen(team, env)
    try:
        first.wait(PROMPT)
        first.run("Remember the alpaca.")
        first.child.sendcontrol("d")
        first.child.expect(pexpect.EOF, timeout=20)
        first.child.close()
        assert first.child.exitstatus == 0
    finally:
        first.close()
    history = tmp_path / "state" / "chat_history"
    assert "Remember the alpaca." in history.read_text(encoding="utf-8")
    second = Screen(team, env)
    try:
        second.wait(PROMPT)
        second.child.send(UP)
        second.wait("Remember the alpaca.")
    finally:
        second.close()


def test_plan_approval_accept_edit_reject(team: Path, env: dict[str, str]) -> None:
    screen = Screen(team, {**env, "EDITOR": "sed -i -e s/haiku/limerick/"})  # an "editor" that edits
    try:
        screen.wait(PROMPT)
        screen.ask("/approve on", "plan approval on")
        screen.child.send(TASK + "\r")
        out = screen.wait("[a]ccept, [e]dit or [r]eject?")
        assert "proposed plan" in out and "s2 general" in out
        screen.child.send("a\r")
        assert "done · total" in screen.wait(PROMPT)

        screen.child.send(TASK + "\r")
        screen.wait("[r]eject?")
        screen.child.send("e\r")
        out = screen.wait(" · total ") + screen.wait(PROMPT)
        assert "edited plan" in out and "did: Write a limerick about tea." in out, out

        screen.child.send(TASK + "\r")
        screen.wait("[r]eject?")
        screen.child.send("r\r")
        screen.wait("reason")
        screen.child.send("not today\r")
        out = screen.wait(PROMPT)
        assert "rejected · total" in out and "not today" in out, out

        screen.child.send(TASK + "\r")
        screen.wait("[r]eject?")
        screen.child.sendcontrol("c")
        assert "s2 general  cancelled" in screen.wait("cancelled: the run was stopped")
        screen.wait(PROMPT)
    finally:
        screen.close()


FIXING_EDITOR = """import pathlib, sys
path = pathlib.Path(sys.argv[-1])
text = path.read_text()
if "nobody" in text:  # the second edit fixes the first one's mistake
    text = text.replace("nobody", "general")
else:  # the first edit changes the poem and names a specialist the team does not have
    text = text.replace("haiku", "limerick").replace('"general"', '"nobody"')
path.write_text(text)
"""


def fixing_editor(tmp_path: Path) -> str:
    """An $EDITOR whose first edit cannot run and whose second edit (of the first's text) fixes it."""
    script = tmp_path / "editor.py"
    script.write_text(FIXING_EDITOR, encoding="utf-8")
    return f"{sys.executable} {script}"


def test_an_edit_that_cannot_run_is_reopened_with_the_edits(
    team: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """Issue 19, finding 6: asked again after a bad edit, editing reopens the edit, not the proposal."""
    screen = Screen(team, {**env, "EDITOR": fixing_editor(tmp_path)})
    try:
        screen.wait(PROMPT)
        screen.ask("/approve on", "plan approval on")
        screen.child.send(TASK + "\r")
        screen.wait("[r]eject?")
        screen.child.send("e\r")
        screen.wait("the edited plan cannot run: s2: unknown specialist 'nobody'")
        screen.wait("[r]eject?")
        screen.child.send("e\r")
        out = screen.wait(" · total ") + screen.wait(PROMPT)
        assert "edited plan" in out and "did: Write a limerick about tea." in out, out
    finally:
        screen.close()


def piped_chat(team: Path, env: dict[str, str], lines: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``tessera chat`` with ``lines`` piped on stdin."""
    return subprocess.run(
        [sys.executable, "-m", "tessera.cli", "chat", "--team", str(team), *args],
        input=lines,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=REPO,
    )


def test_piped_stdin_runs_each_line_plainly(team: Path, env: dict[str, str]) -> None:
    proc = piped_chat(team, env, f"{TASK}\n/trace\n/nope\n")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" not in proc.stdout
    assert "did: Write a haiku about tea." in proc.stdout
    assert re.search(r"critical path  planning \d+\.\d\ds → s1 \d+\.\d\ds → s2", proc.stdout)
    assert "unknown command /nope; /help lists them" in proc.stdout


def test_save_to_a_folder_that_does_not_exist_says_so(
    team: Path, env: dict[str, str], tmp_path: Path
) -> None:
    target = tmp_path / "nonexistent" / "dir" / "t.md"
    proc = piped_chat(team, env, f"{TASK}\n/save {target}\n")
    assert proc.returncode == 0, proc.stderr
    assert f"cannot save to {target}: No such file or directory" in proc.stdout.replace("\n", ""), proc.stdout
    assert "internal error" not in proc.stdout


def test_thread_option_continues_a_conversation(team: Path, env: dict[str, str]) -> None:
    first = piped_chat(team, env, TASK + "\n")
    found = re.search(r"thread (chat-\w+)", first.stdout)
    assert first.returncode == 0 and found, first.stdout + first.stderr
    again = piped_chat(team, env, "And again?\n", "--thread", found.group(1))
    assert again.returncode == 0 and f"thread {found.group(1)}" in again.stdout, again.stdout + again.stderr
    before, after = planner_saw(env)
    assert "Conversation so far:" not in before and f"User: {TASK}" in after


def test_thread_option_with_an_unknown_thread_is_bad_usage(team: Path, env: dict[str, str]) -> None:
    proc = piped_chat(team, env, TASK + "\n", "--thread", "does-not-exist")
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert proc.stderr.strip() == (
        f"no conversation with thread id 'does-not-exist' in {team.parent / 'state' / 'checkpoints.sqlite'};"
        " leave out --thread to start a new one"
    )
    assert not Path(env["REPL_PLANNER_LOG"]).exists()  # nothing ran


def test_chat_help_is_fast() -> None:
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        proc = run_cli("chat", "--help")
        timings.append(time.perf_counter() - started)
        assert proc.returncode == 0 and "--thread" in proc.stdout
    assert min(timings) < 0.5, timings
