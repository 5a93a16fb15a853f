"""MCP servers as tools: a real FastMCP server over stdio and over streamable HTTP, in full team runs."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from tessera import Team
from tests.conftest import REPO, run_cli

from .conftest import CALC, NO_SDK, call, mcp_team, plan

pytestmark = pytest.mark.slow
pytest.importorskip("mcp", reason=NO_SDK)


def test_a_specialist_calls_a_stdio_server_tool_and_only_the_tools_it_names(tmp_path: Path) -> None:
    servers = {"calc": {"command": CALC[0], "args": CALC[1:], "env": {"CALC_SECRET": "${MCP_TEST_SECRET}"}}}
    specialists = {"math": ["calc/multiply"], "ops": ["calc"], "plain": []}
    os.environ["MCP_TEST_SECRET"] = "s3cret"
    try:
        team = Team.from_yaml(mcp_team(tmp_path / "team.yaml", servers, specialists))
    finally:
        del os.environ["MCP_TEST_SECRET"]
    task = plan(
        ("s1", "math", call("multiply", a=6, b=7)),
        ("s2", "ops", call("whoami")),
        ("s3", "plain", call("multiply", a=1, b=2)),
        ("s4", "math", call("whoami")),
    )
    result = team.run(task)
    out = {s.id: s for s in result.subtasks}
    assert out["s1"].status == "done" and out["s1"].output == "tool said 42 [offered: multiply]"
    assert out["s2"].output.endswith("secret=s3cret [offered: die,header,multiply,whoami]")
    # A specialist gets only what it names: none for plain, one tool for math.
    assert out["s3"].output == "tool said error: no tool named 'multiply' (available: ) [offered: ]"
    assert out["s4"].output.startswith("tool said error: no tool named 'whoami' (available: multiply)")
    assert result.status == "done"
    pid = int(out["s2"].output.split()[3])
    _assert_gone(pid)  # the stdio server stopped with its subtask


def test_a_streamable_http_server_on_loopback_serves_the_same_tools(tmp_path: Path, http_calc: str) -> None:
    servers = {"remote": {"url": http_calc, "headers": {"X-Team-Token": "${MCP_TEST_TOKEN:-t0ken}"}}}
    team = Team.from_yaml(mcp_team(tmp_path / "team.yaml", servers, {"math": ["remote"]}))
    result = team.run(
        plan(
            ("s1", "math", call("multiply", a=12, b=12)), ("s2", "math", call("header", name="x-team-token"))
        )
    )
    out = {s.id: s.output for s in result.subtasks}
    assert result.status == "done", result.subtasks
    assert out["s1"] == "tool said 144 [offered: die,header,multiply,whoami]"
    assert out["s2"].startswith("tool said t0ken ")  # the header, from the environment's default


def test_a_server_that_exits_at_start_up_fails_its_subtask_in_one_line_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    servers = {"broken": {"command": CALC[0], "args": [*CALC[1:], "crash"]}}
    team_file = mcp_team(tmp_path / "team.yaml", servers, {"math": ["broken"], "plain": []})
    task = plan(("s1", "math", call("multiply", a=6, b=7)), ("s2", "plain", "hello"))
    started = time.monotonic()
    result = Team.from_yaml(team_file).run(task)
    assert time.monotonic() - started < 30
    out = {s.id: s for s in result.subtasks}
    assert result.status == "partial" and out["s2"].status == "done"
    error = out["s1"].error or ""
    assert out["s1"].status == "failed" and "\n" not in error
    assert (
        error.startswith("McpError: mcp server 'broken' (")
        and ") exited at start-up; its stderr ends: " in error
    )
    assert error.endswith("its stderr ends: calc_server: refusing to start: CALC_CONFIG is not set")

    cli = run_cli("run", "--team", str(team_file), task)  # the same from the shell: exit 3, one line
    assert cli.returncode == 3, cli.stderr
    assert "Traceback" not in cli.stderr
    assert "1 of 2 subtasks failed: s1 (math: McpError: mcp server 'broken'" in cli.stderr


def test_a_server_that_never_answers_times_out_and_one_that_is_missing_fails_at_once(tmp_path: Path) -> None:
    servers = {
        "mute": {
            "command": sys.executable,
            "args": ["-c", "import time; time.sleep(60)"],
            "start_timeout_s": 1,
        },
        "absent": {"command": "no-such-mcp-server-xyz"},
    }
    team = Team.from_yaml(mcp_team(tmp_path / "team.yaml", servers, {"a": ["mute"], "b": ["absent"]}))
    started = time.monotonic()
    result = team.run(plan(("s1", "a", call("x")), ("s2", "b", call("x"))))
    assert time.monotonic() - started < 15  # 1 s to give up, a few to stop the mute process
    errors = {s.id: s.error or "" for s in result.subtasks}
    assert result.status == "failed"
    assert "mcp server 'mute'" in errors["s1"] and "did not start within 1s" in errors["s1"]
    assert errors["s2"].endswith(
        "could not be started: FileNotFoundError: [Errno 2] No such file or directory: 'no-such-mcp-server-xyz'"
    )


def test_a_server_that_dies_during_a_call_fails_the_subtask(tmp_path: Path) -> None:
    servers = {"calc": {"command": CALC[0], "args": CALC[1:]}}
    team = Team.from_yaml(mcp_team(tmp_path / "team.yaml", servers, {"math": ["calc"], "plain": []}))
    result = team.run(plan(("s1", "math", call("die")), ("s2", "plain", "hi")))
    out = {s.id: s for s in result.subtasks}
    assert out["s1"].status == "failed" and out["s2"].status == "done"
    assert "mcp server 'calc'" in (out["s1"].error or "") and "stopped" in (out["s1"].error or "")


def test_the_example_team_multiplies_with_its_mcp_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESSERA_STATE_DIR", str(tmp_path))
    done = run_cli("run", "--team", str(REPO / "examples" / "mcp" / "team.yaml"), "Multiply 1234 by 5678.")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "The result is 7006652."


def _assert_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail(f"MCP server process {pid} is still running")
