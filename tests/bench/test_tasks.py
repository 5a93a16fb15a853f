"""``tessera bench tasks``: the suite's shape, its checks, and a run on function models."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest

from tessera.bench._task_suite import SUITE, Check, check_answer
from tests.conftest import REPO, run_cli


def test_the_suite_covers_every_specialist_kind_and_shape() -> None:
    assert len(SUITE) >= 30 and len({t.id for t in SUITE}) == len(SUITE)
    kinds = set().union(*(t.kinds for t in SUITE))
    assert kinds == {"coder", "retriever", "tool:ocr", "tool:tts", "general"}
    assert {t.steps for t in SUITE} >= {1, 2, 3}
    assert {t.shape for t in SUITE} == {"single", "parallel", "chain"}
    assert all(t.shape == "single" for t in SUITE if t.steps == 1)


def test_every_check_passes_a_right_answer_and_fails_an_empty_one(tmp_path: Path) -> None:
    wav = tmp_path / "out.wav"
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(8000)
        out.writeframes(b"\0\0" * 800)
    for task in SUITE:
        right = " ".join([*task.check.all_of, *(group[0] for group in task.check.any_of)])
        assert check_answer(task.check, f"{right} saved to {wav}")[0], task.id
        assert not check_answer(task.check, "")[0], task.id


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        ("The sum is 42,925.", True),
        ("The sum is 42925", True),
        ("The sum is 142925", False),
        ("The sum is 42925.5", False),
        ("no idea", False),
    ],
)
def test_numbers_match_whole_and_with_separators(answer: str, ok: bool) -> None:
    assert check_answer(Check(all_of=("42925",)), answer)[0] is ok


def test_a_wav_must_exist(tmp_path: Path) -> None:
    check = Check(wav=True)
    assert not check_answer(check, "saved to /nowhere/x.wav")[0]
    (tmp_path / "empty.wav").write_bytes(b"")
    assert not check_answer(check, f"saved to {tmp_path / 'empty.wav'}")[0]


def test_the_bench_runs_on_function_models_and_reports_what_happened(tmp_path: Path) -> None:
    done = run_cli(
        "bench", "tasks", "--team", str(REPO / "configs" / "offline.yaml"), "--only", "capital",
        "--only", "fib-and-explain", "--workdir", str(tmp_path), "--json", timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    team = report["systems"]["team"]
    # the offline team echoes: it answers nothing right, plans by rule on its one general specialist
    assert team["tasks"] == 2 and team["correct"] == 0 and team["plans_valid_first_try"] == 1.0
    outcomes = {o["id"]: o for o in report["outcomes"]}
    assert outcomes["capital"]["right_specialists"] is True  # general is the right one here
    assert outcomes["fib-and-explain"]["right_specialists"] is False
    assert (tmp_path / "images" / "invoice.png").is_file() and (tmp_path / "kb" / "handbook").is_dir()
    assert "FAIL team  capital" in done.stderr


def test_an_unknown_task_id_is_a_usage_error() -> None:
    done = run_cli("bench", "tasks", "--team", str(REPO / "configs" / "offline.yaml"), "--only", "nope")
    assert done.returncode == 2 and "unknown task id(s): nope" in done.stderr
