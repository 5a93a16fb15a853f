"""The ``tts`` tool: text to a WAV file, by espeak-ng or an engine of your own.

Settings (``tools.tts``): ``engine`` (``espeak-ng``, or ``module:Class``), ``voice``, ``rate`` (words per
minute) and ``output_dir`` (default: the run's output directory). Files are named ``speech-<8 hex>.wav``.

An engine is any class with ``synthesize(text, voice, rate, path)`` that writes a WAV file to ``path``
(:class:`TtsEngine`); it is built with no arguments. A piper engine, for instance, could read the voice
model's path from ``voice``::

    class PiperEngine:
        def synthesize(self, text: str, voice: str, rate: int, path: Path) -> None:
            scale = 175 / rate  # piper's --length_scale: above 1 is slower
            subprocess.run(
                ["piper", "--model", voice, "--length_scale", str(scale), "--output_file", str(path)],
                input=text.encode(), check=True, capture_output=True,
            )

and be configured as ``engine: mypkg.speech:PiperEngine`` with ``voice: /models/en_US-lessac-medium.onnx``.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from langchain_core.tools import BaseTool, StructuredTool

from tessera.errors import AgentRunError, ImportTargetError, MissingDependencyError, ModelLoadError, UserError
from tessera.tools.base import ToolEnv

__all__ = [
    "EspeakEngine",
    "Speech",
    "TtsEngine",
    "args_from_instruction",
    "load_engine",
    "make_tool",
    "run_for_agent",
    "synthesize",
]

TIMEOUT_S = 600
"""The most espeak-ng may take for one text."""

_SPEECH_WORDS = re.compile(
    r"\b(say|speak|spoken|speech|read|aloud|pronounce|narrate|voice|audio|tts|wav|announce|recite)\b",
    re.IGNORECASE,
)
_PREFIX = re.compile(r"^\s*([^:\n]{1,80}?)\s*:\s*(.*)$", re.DOTALL)
_LEAD_VERB = re.compile(r"^\s*(?:please\s+)?(say|speak|read|pronounce|narrate|recite)\b", re.I)
_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”')


@runtime_checkable
class TtsEngine(Protocol):
    """Turns text into speech."""

    def synthesize(self, text: str, voice: str, rate: int, path: Path) -> None:
        """Write ``text`` spoken by ``voice`` at ``rate`` words per minute to the WAV file ``path``.

        Raises:
            UserError: a missing program or unknown voice, with how to fix it.
        """
        ...


class EspeakEngine:
    """The built-in engine: the ``espeak-ng`` program (Debian: ``apt-get install espeak-ng``)."""

    def synthesize(self, text: str, voice: str, rate: int, path: Path) -> None:
        """Run ``espeak-ng -v VOICE -s RATE -w PATH --stdin`` with the text on stdin."""
        program = shutil.which("espeak-ng")
        if program is None:
            raise MissingDependencyError("espeak-ng is not installed: apt-get install espeak-ng")
        command = [program, "-v", voice, "-s", str(rate), "-w", str(path), "--stdin"]
        try:
            done = subprocess.run(command, input=text.encode(), capture_output=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise AgentRunError(f"espeak-ng took more than {TIMEOUT_S} s") from None
        message = (done.stderr or done.stdout).decode(errors="replace").strip()
        if "voice does not exist" in message:
            raise UserError(f"espeak-ng has no voice {voice!r} (list them: espeak-ng --voices)")
        if done.returncode != 0:
            raise AgentRunError(f"espeak-ng failed: {message or f'exit {done.returncode}'}")


@dataclass(frozen=True)
class Speech:
    """A WAV file of synthesized speech."""

    path: Path
    duration_s: float
    voice: str
    rate: int
    engine: str
    sample_rate: int


def load_engine(spec: str) -> TtsEngine:
    """The engine ``tools.tts.engine`` names: ``espeak-ng``, or ``module:Class`` (built with no arguments).

    Raises:
        UserError: the name is unknown, or the class has no ``synthesize`` method.
    """
    if spec in ("espeak-ng", "espeak"):
        return EspeakEngine()
    if ":" not in spec:
        raise UserError(f"tools.tts.engine: unknown engine {spec!r} (known: espeak-ng; or module:Class)")
    from tessera._imports import import_object

    try:
        target: Any = import_object(spec, where="tools.tts.engine")
    except ImportTargetError as exc:  # the engine is the tool's speech model
        raise ModelLoadError(str(exc)) from None
    try:
        engine = target() if isinstance(target, type) else target
    except Exception as exc:  # noqa: BLE001 - any constructor failure is reported the same way
        raise UserError(f"tools.tts.engine: cannot build {spec!r}: {exc}") from None
    if not isinstance(engine, TtsEngine):
        raise UserError(f"tools.tts.engine: {spec!r} has no synthesize(text, voice, rate, path) method")
    return engine


def synthesize(
    text: str,
    *,
    output_dir: Path,
    voice: str = "en",
    rate: int = 175,
    engine: str | TtsEngine = "espeak-ng",
) -> Speech:
    """Speak ``text`` into a new ``speech-<8 hex>.wav`` in ``output_dir`` (created if needed).

    Raises:
        ValueError: the text is empty.
        UserError: the engine is missing or unknown, or has no such voice.
        AgentRunError: the engine failed or did not write a readable WAV file.
    """
    if not text.strip():
        raise ValueError("nothing to say: the text is empty")
    chosen = load_engine(engine) if isinstance(engine, str) else engine
    name = engine if isinstance(engine, str) else type(engine).__name__
    output_dir = output_dir.expanduser()
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"speech-{secrets.token_hex(4)}.wav"
    while path.exists():
        path = output_dir / f"speech-{secrets.token_hex(4)}.wav"
    try:
        chosen.synthesize(text.strip(), voice, rate, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if not path.is_file():
        raise AgentRunError(f"tts engine {name!r} wrote no file at {path}")
    try:
        with wave.open(str(path), "rb") as audio:
            frames, sample_rate = audio.getnframes(), audio.getframerate()
    except (wave.Error, EOFError) as exc:
        path.unlink(missing_ok=True)
        raise AgentRunError(f"tts engine {name!r} wrote an unreadable WAV file: {exc}") from None
    return Speech(path, frames / sample_rate if sample_rate else 0.0, voice, rate, name, sample_rate)


def args_from_instruction(instruction: str) -> dict[str, Any]:
    """The ``tts`` tool's arguments: the text to speak.

    That is the text after a short lead-in such as ``Say:``, ``Read aloud:`` or ``Convert this to speech:``;
    else the double-quoted text of an instruction that starts with a verb like ``Say "hello" slowly``; else
    the whole instruction.

    Raises:
        ValueError: there is no text to speak.
    """
    text = instruction.strip()
    prefix = _PREFIX.match(text)
    quoted = _QUOTED.search(text)
    if prefix and _SPEECH_WORDS.search(prefix.group(1)):
        text = _unquote(prefix.group(2).strip())
    elif quoted and _LEAD_VERB.match(text):
        text = (quoted.group(1) or quoted.group(2)).strip()
    if not text:
        raise ValueError(f"the instruction has no text to speak: {instruction!r}")
    return {"text": text}


def make_tool(env: ToolEnv) -> BaseTool:
    """The ``tts`` tool, with the engine, voice, rate and output directory of ``tools.tts``."""
    settings = env.config.tools.tts
    output_dir = settings.output_dir or env.output_dir

    def tts(text: str) -> str:
        """Speak text aloud into a WAV file; returns the file's path and duration."""
        speech = synthesize(
            text, output_dir=output_dir, voice=settings.voice, rate=settings.rate, engine=settings.engine
        )
        return _output(speech)

    async def atts(text: str) -> str:
        return await asyncio.to_thread(tts, text)

    return StructuredTool.from_function(func=tts, coroutine=atts, name="tts")


async def run_for_agent(env: ToolEnv, instruction: str) -> tuple[str, dict[str, Any]]:
    """Run ``tts`` for a tool agent: the WAV's path and duration, and artifacts (path, duration_s, ...)."""
    text = args_from_instruction(instruction)["text"]
    settings = env.config.tools.tts
    speech = await asyncio.to_thread(
        synthesize,
        text,
        output_dir=settings.output_dir or env.output_dir,
        voice=settings.voice,
        rate=settings.rate,
        engine=settings.engine,
    )
    artifacts = {
        "path": str(speech.path),
        "duration_s": round(speech.duration_s, 3),
        "voice": speech.voice,
        "rate": speech.rate,
        "engine": speech.engine,
        "sample_rate": speech.sample_rate,
    }
    return _output(speech), artifacts


def _output(speech: Speech) -> str:
    return f"{speech.path} ({speech.duration_s:.1f} s of speech)"


def _unquote(text: str) -> str:
    for left, right in (('"', '"'), ("“", "”"), ("'", "'")):
        if len(text) >= 2 and text.startswith(left) and text.endswith(right):
            return text[1:-1].strip()
    return text
