"""``tessera init``, ``completion`` and ``--debug``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli


def test_init_writes_a_team_that_validates_and_runs_offline(tmp_path: Path) -> None:
    out = run_cli("init", str(tmp_path / "proj"))
    assert out.returncode == 0, out.stderr
    team = tmp_path / "proj" / "team.yaml"
    assert f"tessera validate {team}" in out.stdout
    assert run_cli("validate", str(team)).returncode == 0
    ran = run_cli("run", "--team", str(team), "--json", "Summarise the notes; then list three uses.")
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result["status"] == "done" and len(result["subtasks"]) == 2
    assert (tmp_path / "proj" / ".tessera" / "memory").is_dir()  # state lives beside the team file
    assert "name: proj" in team.read_text()


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    assert run_cli("init", str(tmp_path)).returncode == 0
    (tmp_path / "team.yaml").write_text("# mine\n")
    again = run_cli("init", str(tmp_path))
    assert (
        again.returncode == 2
        and again.stderr.strip() == f"{tmp_path / 'team.yaml'}: already exists (use --force to overwrite)"
    )
    assert (tmp_path / "team.yaml").read_text() == "# mine\n"
    assert run_cli("init", str(tmp_path), "--force", "--name", "ok-team").returncode == 0
    assert "name: ok-team" in (tmp_path / "team.yaml").read_text()


def test_completion_prints_a_script_for_each_shell() -> None:
    for shell, marker in (
        ("bash", "complete -o nosort -F"),
        ("zsh", "compdef"),
        ("fish", "complete --no-files"),
    ):
        out = run_cli("completion", shell)
        assert out.returncode == 0 and "_TESSERA_COMPLETE" in out.stdout and marker in out.stdout, shell


def test_debug_shows_the_traceback_that_is_otherwise_one_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.yaml")
    plain = run_cli("run", "--team", missing, "hi")
    assert plain.returncode == 2 and plain.stderr.strip() == f"{missing}: no such file"
    debug = run_cli("--debug", "run", "--team", missing, "hi")
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "ConfigError" in debug.stderr
