"""Word error rate of the ``asr`` tool on speech that espeak-ng synthesizes from known sentences.

The sentences are 6 to 12 words each and hold no numbers, so that "seven" against "7" is not counted as
an error. Both sides are compared as lowercase words without punctuation. The word error rate is the
word-level edit distance (substitutions, insertions, deletions) summed over all sentences, divided by the
number of reference words.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tessera.config import AsrConfig, TtsConfig

__all__ = ["SENTENCES", "AsrScore", "measure", "normalize", "word_errors"]

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please send the weekly report to the whole team.",
    "Small models can work together on a large task.",
    "The last train to the city leaves early in the morning.",
    "Turn off the lights before you leave the office.",
)
"""Five sentences of 6 to 12 words."""

_WORD = re.compile(r"[a-z0-9']+")


@dataclass(frozen=True)
class AsrScore:
    """One sentence: what was said, what was heard, and the word errors between them."""

    reference: str
    heard: str
    errors: int
    words: int
    audio_s: float
    seconds: float


def normalize(text: str) -> list[str]:
    """Lowercase words without punctuation."""
    return _WORD.findall(text.lower().replace("-", " "))


def word_errors(reference: Sequence[str], heard: Sequence[str]) -> int:
    """Substitutions, insertions and deletions that turn ``reference`` into ``heard`` (Levenshtein).

    Any two sequences will do: lists of words here, strings for a character error rate.
    """
    previous = list(range(len(heard) + 1))
    for i, word in enumerate(reference, 1):
        current = [i]
        for j, other in enumerate(heard, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other)))
        previous = current
    return previous[-1]


def measure(
    sentences: Sequence[str] = SENTENCES,
    *,
    asr: AsrConfig | None = None,
    tts: TtsConfig | None = None,
    folder: Path | None = None,
) -> dict[str, Any]:
    """Speak each sentence with espeak-ng, transcribe it, and report the word error rate.

    Returns:
        ``{"wer", "errors", "words", "model", "settings", "tts", "load_s", "sentences": [...]}``;
        ``load_s`` is the first transcription's extra time (the model's load).
    """
    from tessera.config import AsrConfig, TtsConfig
    from tessera.tools.asr import transcribe
    from tessera.tools.tts import synthesize

    asr = asr or AsrConfig()
    tts = tts or TtsConfig()
    with tempfile.TemporaryDirectory(prefix="tessera-asr-") as scratch:
        where = folder or Path(scratch)
        scores = []
        first_s = None
        for sentence in sentences:
            speech = synthesize(sentence, output_dir=where, voice=tts.voice, rate=tts.rate, engine=tts.engine)
            started = time.perf_counter()
            heard = transcribe(speech.path, asr)
            seconds = time.perf_counter() - started
            first_s = seconds if first_s is None else first_s
            reference = normalize(sentence)
            errors = word_errors(reference, normalize(heard.text))
            scores.append(AsrScore(sentence, heard.text, errors, len(reference), speech.duration_s, seconds))
    errors = sum(s.errors for s in scores)
    words = sum(s.words for s in scores)
    later = [s.seconds for s in scores[1:]]
    load_s = max(0.0, (first_s or 0.0) - (sum(later) / len(later) if later else 0.0))
    return {
        "wer": round(errors / words, 4) if words else 0.0,
        "errors": errors,
        "words": words,
        "model": asr.model,
        "settings": asr.model_dump(exclude={"model"}),
        "tts": {"engine": tts.engine, "voice": tts.voice, "rate": tts.rate},
        "load_s": round(load_s, 3),
        "sentences": [
            {
                "reference": s.reference,
                "heard": s.heard,
                "errors": s.errors,
                "words": s.words,
                "audio_s": round(s.audio_s, 3),
                "seconds": round(s.seconds, 3),
            }
            for s in scores
        ],
    }
