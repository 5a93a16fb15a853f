"""The ``tts`` tool against the real espeak-ng, and a custom engine named by ``module:Class``."""

from __future__ import annotations

import array
import math
import re
import shutil
import sys
import time
import wave
from pathlib import Path
from typing import Any

import pytest

from tessera import TeamConfig
from tessera.errors import AgentRunError, MissingDependencyError, ModelLoadError, UserError
from tessera.tools import tts
from tessera.tools.base import ToolEnv

TWENTY_WORDS = (
    "The team of small models read the scanned report, wrote a short summary, "
    "and now speaks it aloud for everyone."
)
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed: apt-get install espeak-ng"
)


class SineEngine:
    """A custom engine: one 440 Hz beep of 0.1 s per word, as a 16 kHz mono WAV."""

    def synthesize(self, text: str, voice: str, rate: int, path: Path) -> None:
        frames = int(16000 * 0.1 * len(text.split()))
        samples = array.array(
            "h", (int(8000 * math.sin(2 * math.pi * 440 * i / 16000)) for i in range(frames))
        )
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(16000)
            out.writeframes(samples.tobytes())


class SilentEngine:
    """A broken engine: writes nothing."""

    def synthesize(self, text: str, voice: str, rate: int, path: Path) -> None:
        return None


class GarbageEngine:
    """A broken engine: writes a file that is not a WAV."""

    def synthesize(self, text: str, voice: str, rate: int, path: Path) -> None:
        path.write_bytes(b"not a wav")


def rms(path: Path) -> float:
    """Root mean square of a 16-bit WAV's samples (0 is silence, 32767 full scale)."""
    with wave.open(str(path), "rb") as audio:
        assert audio.getsampwidth() == 2
        samples = array.array("h", audio.readframes(audio.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    return math.sqrt(sum(s * s for s in samples) / max(len(samples), 1))


def config(**tts_settings: Any) -> TeamConfig:
    return TeamConfig.from_dict(
        {
            "name": "t",
            "models": {"m": {"backend": "function", "callable": "tests.fakes:echo"}},
            "planner": {"model": "m"},
            "specialists": {"speaker": {"description": "speaks", "model": "m"}},
            "tools": {"tts": tts_settings},
        }
    )


@needs_espeak
def test_speaks_twenty_words_in_a_plausible_time(tmp_path: Path) -> None:
    assert len(TWENTY_WORDS.split()) == 20
    started = time.perf_counter()
    speech = tts.synthesize(TWENTY_WORDS, output_dir=tmp_path / "out", voice="en", rate=175)
    elapsed = time.perf_counter() - started
    print(
        f"\nTTS of 20 words: {elapsed:.3f} s for {speech.duration_s:.2f} s of audio, RMS {rms(speech.path):.0f}"
    )
    assert speech.path.parent == tmp_path / "out"
    assert re.fullmatch(r"speech-[0-9a-f]{8}\.wav", speech.path.name)
    assert 4.0 <= speech.duration_s <= 10.0  # 20 words at 175 wpm: about 7 s
    assert rms(speech.path) > 300
    assert (speech.voice, speech.rate, speech.engine, speech.sample_rate) == ("en", 175, "espeak-ng", 22050)


@needs_espeak
def test_rate_and_voice_are_configurable(tmp_path: Path) -> None:
    slow = tts.synthesize(TWENTY_WORDS, output_dir=tmp_path, rate=120)
    fast = tts.synthesize(TWENTY_WORDS, output_dir=tmp_path, rate=300)
    assert fast.duration_s < 0.7 * slow.duration_s
    german = tts.synthesize(TWENTY_WORDS, output_dir=tmp_path, voice="de")
    assert german.voice == "de" and rms(german.path) > 300
    assert (
        german.path.read_bytes()
        != tts.synthesize(TWENTY_WORDS, output_dir=tmp_path, voice="en-us").path.read_bytes()
    )
    assert len(set(tmp_path.glob("speech-*.wav"))) == 4


@needs_espeak
def test_long_text_and_special_characters_go_through_stdin(tmp_path: Path) -> None:
    text = '-v xx --help "quoted" $(echo no) Grüße, naïve café; ' + "and so on " * 300
    speech = tts.synthesize(text, output_dir=tmp_path)
    assert speech.duration_s > 60 and rms(speech.path) > 300


@needs_espeak
def test_unknown_voice(tmp_path: Path) -> None:
    with pytest.raises(
        UserError, match=r"^espeak-ng has no voice 'zz-nope' \(list them: espeak-ng --voices\)$"
    ):
        tts.synthesize("hello", output_dir=tmp_path, voice="zz-nope")
    assert list(tmp_path.iterdir()) == []


def test_missing_espeak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        MissingDependencyError, match=r"^espeak-ng is not installed: apt-get install espeak-ng$"
    ):
        tts.synthesize("hello", output_dir=tmp_path / "out")


def test_empty_text(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nothing to say"):
        tts.synthesize("  \n", output_dir=tmp_path)


def test_custom_engine_by_module_and_class(tmp_path: Path) -> None:
    speech = tts.synthesize("one two three four", output_dir=tmp_path, engine=f"{__name__}:SineEngine")
    assert speech.engine == f"{__name__}:SineEngine"
    assert speech.sample_rate == 16000 and speech.duration_s == pytest.approx(0.4)
    assert rms(speech.path) == pytest.approx(8000 / math.sqrt(2), rel=0.01)
    assert tts.synthesize("one", output_dir=tmp_path, engine=SineEngine()).engine == "SineEngine"


def test_bad_engines(tmp_path: Path) -> None:
    with pytest.raises(
        UserError,
        match=r"^tools.tts.engine: unknown engine 'festival' \(known: espeak-ng; or module:Class\)$",
    ):
        tts.synthesize("hi", output_dir=tmp_path, engine="festival")
    with pytest.raises(ModelLoadError, match=r"^tools.tts.engine: cannot import module 'no_such_module'"):
        tts.synthesize("hi", output_dir=tmp_path, engine="no_such_module:Engine")
    with pytest.raises(UserError, match=r"has no synthesize\(text, voice, rate, path\) method"):
        tts.synthesize("hi", output_dir=tmp_path, engine="pathlib:PurePath")
    with pytest.raises(
        AgentRunError, match=r"^tts engine '.*SilentEngine' wrote no file at .*speech-[0-9a-f]{8}\.wav$"
    ):
        tts.synthesize("hi", output_dir=tmp_path, engine=f"{__name__}:SilentEngine")
    with pytest.raises(AgentRunError, match=r"^tts engine '.*GarbageEngine' wrote an unreadable WAV file"):
        tts.synthesize("hi", output_dir=tmp_path, engine=f"{__name__}:GarbageEngine")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("instruction", "text"),
    [
        ("Say: Hello world, this is Tessera.", "Hello world, this is Tessera."),
        ("SPEAK:   Good night", "Good night"),
        ("Read aloud: Note: the meeting moved to 5:30.", "Note: the meeting moved to 5:30."),
        ('Say: "Quoted whole"', "Quoted whole"),
        ("Convert the following text to speech:\nFirst line.\nSecond line.", "First line.\nSecond line."),
        ('Say "Good morning" in a cheerful voice', "Good morning"),
        ("Please read this out loud: “Curly quotes”", "Curly quotes"),
        ("Summary: the report was fine.", "Summary: the report was fine."),
        ('The sign read "closed" all day', 'The sign read "closed" all day'),
        ('Please read "Chapter one" slowly', "Chapter one"),
        ("Hello there", "Hello there"),
    ],
)
def test_args_from_instruction(instruction: str, text: str) -> None:
    assert tts.args_from_instruction(instruction) == {"text": text}


@pytest.mark.parametrize("instruction", ["", "   ", "Say:", "Read aloud:   ", 'Say: ""'])
def test_args_from_instruction_without_text(instruction: str) -> None:
    with pytest.raises(ValueError, match="the instruction has no text to speak"):
        tts.args_from_instruction(instruction)


@needs_espeak
async def test_tool_writes_to_the_run_output_dir(tmp_path: Path) -> None:
    tool = tts.make_tool(ToolEnv(config(voice="en-us", rate=200), tmp_path / "run"))
    assert tool.name == "tts" and list(tool.args) == ["text"]
    result = await tool.ainvoke({"text": TWENTY_WORDS})
    match = re.fullmatch(r"(.+\.wav) \((\d+\.\d) s of speech\)", result)
    assert match, result
    assert Path(match.group(1)).parent == tmp_path / "run" and float(match.group(2)) > 4


async def test_agent_entry_point_with_custom_engine_and_output_dir(tmp_path: Path) -> None:
    settings = {
        "engine": f"{__name__}:SineEngine",
        "voice": "any",
        "rate": 100,
        "output_dir": str(tmp_path / "wavs"),
    }
    env = ToolEnv(config(**settings), tmp_path / "run")
    text, artifacts = await tts.run_for_agent(env, "Say: one two three four five")
    path = Path(artifacts.pop("path"))
    assert text == f"{path} (0.5 s of speech)"
    assert path.parent == tmp_path / "wavs" and path.is_file()
    assert artifacts == {
        "duration_s": 0.5,
        "voice": "any",
        "rate": 100,
        "engine": f"{__name__}:SineEngine",
        "sample_rate": 16000,
    }
    with pytest.raises(ValueError, match="no text to speak"):
        await tts.run_for_agent(env, "Say:")
