"""``tessera trace RUN.json [--png]``: the timeline of a run saved by ``tessera run --json``."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from .agents.test_custom import custom_team, task
from .conftest import run_cli
from .test_cli import assert_one_line_error, imported_modules


@pytest.fixture(scope="module")
def run_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run through the CLI: a model that calls a tool, a bare tool agent, a dependent subtask."""
    tmp = tmp_path_factory.mktemp("trace")
    plan = task(("a", "counter", "one two three"), ("e", "tool_agent", "four five"))
    plan = plan.replace(
        '"instruction": "four five", "depends_on": []', '"instruction": "four five", "depends_on": ["a"]'
    )
    out = run_cli("run", "--team", str(custom_team(tmp)), "--json", plan)
    assert out.returncode == 0, out.stderr
    path = tmp / "run.json"
    path.write_text(out.stdout, encoding="utf-8")
    return path


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_png_chart_is_written(run_file: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out_png = tmp_path / "charts" / "run.png"
    out = run_cli("trace", str(run_file), "--png", str(out_png))
    assert out.returncode == 0, out.stderr
    data = out_png.read_bytes()
    width, height = png_size(data)
    assert width == 1100 and 200 <= height <= 1000  # 10 inches at 110 dpi; a row per lane
    assert 10_000 < len(data) < 400_000


def test_text_timeline_has_a_row_per_model_and_tool(run_file: Path) -> None:
    out = run_cli("trace", str(run_file), "--width", "48")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines() if line.strip()}
    assert {"planner", "caller", "tool:word_count"} <= set(rows)
    assert "T" in rows["tool:word_count"] and "#" in rows["caller"]
    assert "critical path  planning" in out.stdout and "→ a " in out.stdout and "→ e " in out.stdout
    saved = json.loads(run_file.read_text())["trace"]
    assert saved["critical_path"] == ["planning@0", "subtask:a@0", "subtask:e@0", "answer@0"]


def test_json_prints_the_trace(run_file: Path) -> None:
    out = run_cli("trace", str(run_file), "--json")
    assert out.returncode == 0, out.stderr
    trace = json.loads(out.stdout)
    assert trace == json.loads(run_file.read_text())["trace"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "no such file"),
        ("not json {", "not a JSON run result"),
        ('{"answer": "x"}', "no 'trace' in it"),
        (
            '{"trace": {"started": 1, "ended": 2, "spans": [{"kind": "decode"}]}}',
            "trace.spans.0.start: Field required",
        ),
        ("[1, 2]", "not a JSON run result"),
    ],
)
def test_bad_file_is_one_line_and_exit_2(tmp_path: Path, content: str | None, needle: str) -> None:
    path = tmp_path / "run.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    out = run_cli("trace", str(path))
    assert_one_line_error(out, str(path), needle)


def test_trace_help_imports_nothing_heavy() -> None:
    modules = imported_modules("trace", "--help")
    assert not {m for m in modules if m.split(".")[0] in ("matplotlib", "opentelemetry", "langgraph")}
