"""The voice pipeline: ``tessera run --audio IN --speak OUT`` and the chat's ``/listen`` and ``/speak``.

Speech is made by the real espeak-ng and heard by the real whisper-base. The team is the rule-based demo
planner and a calculator function model that computes from the words of its instruction, so the answer is
right only when the transcript is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from .conftest import REPO, run_cli, write_team
from .voice_fakes import require_whisper, say


@pytest.fixture(scope="module")
def whisper() -> Path:
    return require_whisper()


@pytest.fixture(scope="module")
def task_wav(whisper: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return say("Compute seven times six.", tmp_path_factory.mktemp("voice") / "task.wav")


@pytest.fixture
def team_file(tmp_path: Path) -> Path:
    return write_team(
        tmp_path / "team.yaml",
        {
            "planner": {"backend": "function", "callable": "tessera.testing.demo:planner"},
            "calc": {"backend": "function", "callable": "tests.voice_fakes:calculator"},
        },
        specialists={"calculator": {"description": "does arithmetic", "model": "calc"}},
        tools={"asr": {"language": "en"}},
    )


def duration(path: Path) -> float:
    with wave.open(str(path), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


def test_spoken_task_answers_42_and_speaks_the_answer(
    task_wav: Path, team_file: Path, tmp_path: Path
) -> None:
    out_wav = tmp_path / "answer.wav"
    out = run_cli("run", "-t", str(team_file), "--audio", str(task_wav), "--speak", str(out_wav), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "42"
    assert "heard: Compute 7 times 6." in out.stderr or "heard: compute 7 times 6." in out.stderr, out.stderr
    assert f"spoke: {out_wav} (" in out.stderr
    assert "voice: asr " in out.stderr and "(wall " in out.stderr
    assert 0.5 <= duration(out_wav) <= 3.0, duration(out_wav)  # "forty-two" at 175 words a minute: about 1 s


def test_json_reports_stages_that_add_up_to_the_wall_time(
    task_wav: Path, team_file: Path, tmp_path: Path
) -> None:
    out_wav = tmp_path / "answer.wav"
    began = time.perf_counter()
    out = run_cli(
        "run", "-t", str(team_file), "--json", "--audio", str(task_wav), "--speak", str(out_wav), timeout=120
    )
    elapsed = time.perf_counter() - began
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["answer"] == "42" and result["status"] == "done"
    voice = result["voice"]
    stages = voice["stages"]
    parts = ("asr_s", "planning_s", "subtasks_s", "answer_s", "memory_s", "tts_s")
    assert all(stages[name] >= 0 for name in parts) and stages["asr_s"] > 0 and stages["tts_s"] > 0
    assert abs(sum(stages[name] for name in parts) - stages["wall_s"]) <= 0.05 * stages["wall_s"], stages
    assert stages["wall_s"] < elapsed
    assert stages["planning_s"] == pytest.approx(result["timings"]["planning_s"], abs=0.01)
    transcript = voice["transcript"]
    assert transcript["source"] == str(task_wav) and transcript["segments"]
    assert transcript["text"] == " ".join(s["text"] for s in transcript["segments"])
    assert voice["speech"]["path"] == str(out_wav)
    assert voice["speech"]["duration_s"] == pytest.approx(duration(out_wav), abs=0.01)


def test_speak_alone_says_the_answer_of_a_typed_task(team_file: Path, tmp_path: Path) -> None:
    require_whisper()
    out_wav = tmp_path / "answer.wav"
    out = run_cli("run", "-t", str(team_file), "--json", "--speak", str(out_wav), "compute 6 plus 5")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["answer"] == "11" and result["voice"]["transcript"] is None
    assert result["voice"]["stages"]["asr_s"] == 0.0 and 0.3 <= duration(out_wav) <= 3.0


def test_bad_audio_and_usage_are_one_line_with_exit_2(
    task_wav: Path, team_file: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"ID3" + b"\x00garbage" * 50)
    notes = tmp_path / "notes.txt"
    notes.write_text("compute seven times six")
    cases = [
        (["--audio", str(tmp_path / "missing.wav")], f"no such file: {tmp_path / 'missing.wav'}"),
        (["--audio", str(broken)], f"cannot read audio {broken}: "),
        (["--audio", str(notes)], f"{notes}: not a supported audio file"),
    ]
    for args, message in cases:
        out = run_cli("run", "-t", str(team_file), *args, "--speak", str(tmp_path / "out.wav"))
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr.strip() == message or out.stderr.strip().startswith(message), out.stderr
        assert "Traceback" not in out.stderr and not (tmp_path / "out.wav").exists()
    both = run_cli("run", "-t", str(team_file), "--audio", str(task_wav), "compute 6 times 7")
    assert both.returncode == 2 and "give the task as TASK or as --audio FILE, not both" in both.stderr
    neither = run_cli("run", "-t", str(team_file))
    assert neither.returncode == 2 and "missing the task" in neither.stderr


def test_silence_is_no_task(whisper: Path, team_file: Path, tmp_path: Path) -> None:
    silent = tmp_path / "silence.wav"
    with wave.open(str(silent), "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(16000)
        audio.writeframes(b"\x00\x00" * 16000)
    out = run_cli("run", "-t", str(team_file), "--audio", str(silent))
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1] == f"{silent}: no speech found, so there is no task"


def test_chat_listens_to_a_file_and_speaks_its_answers(
    task_wav: Path, team_file: Path, tmp_path: Path
) -> None:
    lines = ["/speak on", f"/listen {task_wav}", "/speak off", "compute 2 times 3", "/speak", "/listen"]
    out = subprocess.run(
        [sys.executable, "-m", "tessera.cli", "chat", "-t", str(team_file)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "400"},  # a long path on one line
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "speaking answers: on" in text and "speaking answers: off" in text
    assert "heard: " in text and "7 times 6" in text
    spoken = [line for line in text.splitlines() if line.startswith("spoke: ")]
    assert len(spoken) == 1, text  # the answer to the spoken task; not the one after /speak off
    wav = Path(spoken[0].removeprefix("spoke: ").split(" (")[0])
    assert wav.is_file() and 0.5 <= duration(wav) <= 3.0
    assert "\n42\n" in text and "\n6\n" in text
    assert "speaking answers is off; usage: /speak on|off" in text
    assert "usage: /listen FILE" in text


@pytest.mark.real_models
@pytest.mark.slow
def test_spoken_task_on_the_real_default_team(whisper: Path, tmp_path: Path) -> None:
    from tessera.config import load_team
    from tests.test_real_models import DEFAULT, _missing

    missing = _missing(load_team(DEFAULT))
    if missing:
        pytest.skip(f"real models absent: {', '.join(missing)} (scripts/setup.sh provides them)")
    task = say("Compute seven times six.", tmp_path / "task.wav")
    out_wav = tmp_path / "answer.wav"
    env = {"TESSERA_STATE_DIR": str(tmp_path / "state")}
    out = run_cli(
        "run",
        "-t",
        str(DEFAULT),
        "--json",
        "--audio",
        str(task),
        "--speak",
        str(out_wav),
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "Loading weights" not in out.stderr  # no progress bars on a pipe (the embedder's load drew one)
    result = json.loads(out.stdout)
    assert "42" in result["answer"], result["answer"]
    stages = result["voice"]["stages"]
    parts = ("asr_s", "planning_s", "subtasks_s", "answer_s", "memory_s", "tts_s")
    assert abs(sum(stages[name] for name in parts) - stages["wall_s"]) <= 0.05 * stages["wall_s"], stages
    assert 0.5 <= duration(out_wav) <= 30.0, duration(out_wav)
