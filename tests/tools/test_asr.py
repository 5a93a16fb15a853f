"""The ``asr`` tool on speech that the real espeak-ng says, heard by the real whisper-base (faster-whisper)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tessera.bench.asr import SENTENCES, measure, normalize, word_errors
from tessera.config import AsrConfig, TeamConfig, load_team
from tessera.errors import ModelLoadError, UserError
from tessera.tools import asr
from tessera.tools.base import ToolEnv

from ..conftest import run_cli, write_team
from ..voice_fakes import require_whisper, say

SENTENCE = "Small models can work together on a large task."


@pytest.fixture(scope="module")
def whisper() -> Path:
    return require_whisper()


@pytest.fixture(scope="module")
def spoken(whisper: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return say(SENTENCE, tmp_path_factory.mktemp("speech") / "sentence.wav")


def test_word_error_rate_on_five_spoken_sentences_is_at_most_15_percent(whisper: Path) -> None:
    assert len(SENTENCES) == 5 and all(6 <= len(s.split()) <= 12 for s in SENTENCES)
    report = measure()
    assert report["words"] == sum(len(normalize(s)) for s in SENTENCES)
    assert report["wer"] <= 0.15, json.dumps(report["sentences"], indent=1)
    assert all(row["heard"] for row in report["sentences"])


def test_word_errors_counts_substitutions_insertions_and_deletions() -> None:
    reference = normalize("The quick brown fox.")
    assert word_errors(reference, normalize("the quick brown fox")) == 0
    assert word_errors(reference, normalize("the quick brown box")) == 1
    assert word_errors(reference, normalize("the very quick brown fox")) == 1
    assert word_errors(reference, normalize("quick fox")) == 2
    assert word_errors(reference, []) == 4


def test_transcript_has_timed_segments_within_the_audio(spoken: Path) -> None:
    result = asr.transcribe(spoken)
    assert word_errors(normalize(SENTENCE), normalize(result.text)) <= 1, result.text
    assert result.language == "en" and result.model == "Systran/faster-whisper-base"
    assert 2.0 < result.duration_s < 5.0, result.duration_s
    assert result.segments and result.text == " ".join(s.text for s in result.segments)
    for segment in result.segments:
        assert 0.0 <= segment.start < segment.end <= result.duration_s + 0.5, segment


def test_settings_language_beam_and_threads(spoken: Path) -> None:
    result = asr.transcribe(spoken, AsrConfig(language="en", beam_size=1, threads=1))
    assert result.language == "en" and result.language_probability == 1.0
    assert word_errors(normalize(SENTENCE), normalize(result.text)) <= 1, result.text


def test_a_bad_compute_type_names_the_setting(spoken: Path) -> None:
    with pytest.raises(UserError, match=r"^tools\.asr\.compute_type: .*int9"):
        asr.transcribe(spoken, AsrConfig(compute_type="int9"))


def test_bad_audio_is_one_error_naming_the_file(whisper: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    corrupt = tmp_path / "broken.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" * 20)
    empty = tmp_path / "empty.ogg"
    empty.write_bytes(b"")
    cases = [
        (tmp_path / "missing.wav", r"^no such file: .*missing\.wav$"),
        (tmp_path, r"is a directory, not an audio file$"),
        (text, r"notes\.txt: not a supported audio file \(supported: wav, flac, mp3, ogg\)$"),
        (corrupt, r"^cannot read audio .*broken\.wav: "),
        (empty, r"^cannot read audio .*empty\.ogg: "),
    ]
    for path, message in cases:
        with pytest.raises(UserError, match=message):
            asr.transcribe(path)


def test_flac_is_read_too(spoken: Path, tmp_path: Path) -> None:
    import av

    flac = tmp_path / "sentence.flac"
    with av.open(str(spoken)) as source, av.open(str(flac), "w") as target:
        stream = target.add_stream("flac", rate=source.streams.audio[0].rate)
        for frame in source.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                target.mux(packet)
        for packet in stream.encode(None):
            target.mux(packet)
    result = asr.transcribe(flac, AsrConfig(language="en"))
    assert word_errors(normalize(SENTENCE), normalize(result.text)) <= 1, result.text


def test_model_folder_from_a_local_folder_and_bad_specs(whisper: Path, tmp_path: Path) -> None:
    assert asr.model_folder(str(whisper)) == whisper.resolve()
    assert {p.name for p in whisper.iterdir()} >= set(asr.MODEL_FILES)
    with pytest.raises(ModelLoadError, match="no model.bin in the folder"):
        asr.model_folder(str(tmp_path))
    with pytest.raises(ModelLoadError, match="no such folder, and not a hub id"):
        asr.model_folder(str(tmp_path / "nowhere"))


def test_a_local_model_folder_is_read_relative_to_the_team_file(whisper: Path, tmp_path: Path) -> None:
    (tmp_path / "voice").mkdir()
    (tmp_path / "voice" / "model.bin").write_bytes(b"")
    team = write_team(
        tmp_path / "team.yaml",
        {"m": {"backend": "function", "callable": "tests.fakes:echo"}},
        tools={"asr": {"model": "./voice", "language": "en"}},
    )
    assert load_team(team).tools.asr.model == str(tmp_path / "voice")


@pytest.mark.parametrize(
    ("instruction", "path"),
    [
        ("Transcribe /tmp/x/memo.wav", "/tmp/x/memo.wav"),
        ("Transcribe /tmp/x/memo.wav.", "/tmp/x/memo.wav"),
        ('What is said in "/tmp/my notes/day 1.MP3"?', "/tmp/my notes/day 1.MP3"),
        ("Write down the call (calls/march.flac), then summarize it", "calls/march.flac"),
        ("Listen to `~/voice.ogg`", "~/voice.ogg"),
    ],
)
def test_args_from_instruction_finds_the_audio_path(instruction: str, path: str) -> None:
    assert asr.args_from_instruction(instruction) == {"path": path}


@pytest.mark.parametrize("instruction", ["Transcribe the recording", "Open memo.m4a", "see memo.wav/notes"])
def test_args_from_instruction_without_an_audio_path(instruction: str) -> None:
    with pytest.raises(ValueError, match=r"^no audio path \(a file ending in wav, flac, mp3, ogg\)"):
        asr.args_from_instruction(instruction)


async def test_tool_and_agent_entry_point(spoken: Path, tmp_path: Path) -> None:
    config = TeamConfig.from_dict(
        {
            "name": "t",
            "models": {"m": {"backend": "function", "callable": "tests.fakes:echo"}},
            "planner": {"model": "m"},
            "specialists": {"listener": {"description": "hears", "kind": "tool", "tool": "asr"}},
            "tools": {"asr": {"language": "en", "beam_size": 2}},
        }
    )
    env = ToolEnv(config, tmp_path)
    text, artifacts = await asr.run_for_agent(env, f"Transcribe {spoken}")
    assert word_errors(normalize(SENTENCE), normalize(text)) <= 1, text
    assert artifacts["source"] == str(spoken) and artifacts["language"] == "en"
    assert artifacts["segments"] and artifacts["segments"][0]["start"] == 0.0
    assert await asr.make_tool(env).ainvoke({"path": str(spoken)}) == text


def test_asr_agent_in_a_full_run_keeps_the_segments(spoken: Path, tmp_path: Path) -> None:
    team_file = write_team(
        tmp_path / "team.yaml",
        {"planner": {"backend": "function", "callable": "tests.agents.custom:plan"}},
        specialists={"listener": {"description": "ASR", "kind": "tool", "tool": "asr"}},
        tools={"asr": {"language": "en"}},
    )
    plan = {"subtasks": [{"id": "s1", "specialist": "listener", "instruction": f"Transcribe {spoken}"}]}
    out = run_cli("run", "--team", str(team_file), "--json", "PLAN " + json.dumps(plan), timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    sub = result["subtasks"][0]
    assert sub["status"] == "done" and sub["output"] == result["answer"]
    assert word_errors(normalize(SENTENCE), normalize(sub["output"])) <= 1, sub["output"]
    segments = sub["artifacts"]["segments"]
    assert " ".join(s["text"] for s in segments) == sub["output"]
    assert 2.0 < sub["artifacts"]["duration_s"] < 5.0


def test_models_pull_fetches_the_asr_model_of_a_team_that_uses_it(whisper: Path, tmp_path: Path) -> None:
    team_file = write_team(
        tmp_path / "team.yaml",
        {"m": {"backend": "function", "callable": "tests.fakes:echo"}},
        specialists={"listener": {"description": "ASR", "kind": "tool", "tool": "asr"}},
    )
    out = run_cli("models", "pull", "--team", str(team_file), timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"asr: {whisper}"
    plain = write_team(
        tmp_path / "plain.yaml", {"m": {"backend": "function", "callable": "tests.fakes:echo"}}
    )
    assert "asr" not in run_cli("models", "pull", "--team", str(plain)).stdout


def test_without_faster_whisper_it_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tessera.errors import MissingDependencyError

    wav = tmp_path / "x.wav"
    wav.write_bytes(b"RIFF")
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # import faster_whisper raises ImportError
    with pytest.raises(MissingDependencyError, match=r'needs faster-whisper: pip install "tessera\[asr\]"'):
        asr.transcribe(wav)
