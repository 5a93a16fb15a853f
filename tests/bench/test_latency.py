"""``tessera bench latency`` on a tiny generated model: the three modes and the JSON shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.mark.slow
def test_the_latency_bench_runs_every_mode_and_reports_the_json(tiny_gguf: Path) -> None:
    out = run_cli(
        "bench", "latency", "--model", str(tiny_gguf), "--prompt-tokens", "60", "--plan-seconds", "1",
        "--ttft-tokens", "120", "--json",
        timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert {
        "sequential_s",
        "dag_s",
        "streamed_s",
        "time_to_first_subtask_s",
        "ttft_cold_s",
        "ttft_warm_s",
    } <= set(report)
    first = report["time_to_first_subtask_s"]
    assert first["streamed"] < first["dag"]  # the streamed run starts work while the plan is written
    assert report["modes"]["dag"]["time_to_first_subtask_s"] >= 1.0  # the DAG run waits for the whole plan
    starts = {m: report["modes"][m]["subtasks"] for m in ("sequential", "dag")}
    assert starts["dag"]["s3"]["start_s"] < starts["dag"]["s2"]["start_s"] + 0.5  # independent: together
    assert (
        starts["sequential"]["s3"]["start_s"]
        >= starts["sequential"]["s2"]["start_s"] + starts["sequential"]["s2"]["seconds"] - 0.01
    )  # one at a time
