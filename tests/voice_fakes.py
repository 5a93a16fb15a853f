"""Voice test helpers: espeak-ng speech on the spot, the whisper-base model or a skip, a calculator model."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

_NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()
_OPERATIONS = {"times": int.__mul__, "plus": int.__add__, "minus": int.__sub__}


def require_whisper() -> Path:
    """The default ASR model's folder (from the hub cache, the hub or PyPI), or skip saying what is missing."""
    pytest.importorskip(
        "faster_whisper", reason='faster-whisper is not installed: pip install "tessera[asr]"'
    )
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng); the ASR tests speak with it")
    from tessera.config import AsrConfig
    from tessera.errors import ModelDownloadError, ModelLoadError
    from tessera.tools.asr import model_folder

    try:
        return model_folder(AsrConfig().model)
    except (ModelDownloadError, ModelLoadError) as exc:
        pytest.skip(f"the whisper-base model is not available here: {exc}")


def say(text: str, path: Path, rate: int = 175) -> Path:
    """``text`` spoken by espeak-ng into the WAV file ``path``."""
    from tessera.tools.tts import EspeakEngine

    EspeakEngine().synthesize(text, "en", rate, path)
    return path


def calculator(messages: list[dict[str, Any]], **_: Any) -> str:
    """Does the one operation its instruction names ("7 times 6", "seven times six"); else says it cannot.

    The answer comes from the instruction's words alone, so a voice run answers right only if the
    transcript was heard right.
    """
    text = messages[-1]["content"].lower()
    words = re.findall(r"\d+|[a-z]+", text)
    numbers = [
        int(w) if w.isdigit() else _NUMBER_WORDS.index(w) for w in words if w.isdigit() or w in _NUMBER_WORDS
    ]
    operation = next((_OPERATIONS[w] for w in words if w in _OPERATIONS), None)
    if operation is None or len(numbers) != 2:
        return f"cannot compute: {text!r}"
    return str(operation(*numbers))
