"""The chat's voice commands: ``/listen FILE`` takes one turn as speech, ``/speak on|off`` says the answers.

Speech goes through the team's ``tools.asr`` and ``tools.tts`` settings, as in ``tessera run --audio
--speak``. Spoken answers are WAV files in the tools' output folder (``speech-<8 hex>.wav``); the chat
prints each one's path.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text

if TYPE_CHECKING:
    from tessera.cli.chat._session import ChatSession

__all__ = ["listen", "set_speak", "speak_answer"]


def listen(chat: ChatSession, argument: str) -> None:
    """Transcribe the audio file, show what was heard, and send it as this turn's task (or prompt)."""
    from tessera.cli._voice import listen as transcribe

    names = shlex.split(argument)
    if len(names) != 1:
        chat.console.print(Text("usage: /listen FILE (a wav, flac, mp3 or ogg file)", "yellow"))
        return
    transcript = transcribe(chat.config, Path(names[0]))
    chat.console.print(Text(f"heard: {transcript.text or '(no speech)'} ({transcript.seconds:.2f}s)", "dim"))
    if not transcript.text:
        chat.console.print(Text(f"no speech found in {transcript.path}: nothing to send", "yellow"))
    elif chat.model:
        chat.ask_model(transcript.text)
    else:
        chat.run_task(transcript.text)


def set_speak(chat: ChatSession, argument: str) -> None:
    """``/speak on|off``: say each answer from now on, or stop."""
    if argument not in ("on", "off"):
        state = "on" if chat.speak else "off"
        chat.console.print(Text(f"speaking answers is {state}; usage: /speak on|off", "yellow"))
        return
    chat.speak = argument == "on"
    chat.console.print(f"speaking answers: {argument}")


def speak_answer(chat: ChatSession, answer: str) -> None:
    """Say ``answer`` into a new WAV file and print where it is."""
    from tessera.cli._voice import speak

    if not answer.strip():
        return
    speech = speak(chat.config, answer)
    chat.console.print(Text(f"spoke: {speech.path} ({speech.duration_s:.1f} s of speech)", "dim"))
