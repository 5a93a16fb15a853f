"""The voice pipeline: ``tessera run --audio IN [--speak OUT]`` and the chat's ``/listen`` and ``/speak``.

Speech in (the ``asr`` tool, ``tools.asr``), the team, speech out (the ``tts`` tool, ``tools.tts``). Each
stage is timed: ``asr_s`` and ``tts_s`` by the pipeline's clock, ``planning_s``, ``subtasks_s`` and
``answer_s`` from the run's trace, ``memory_s`` (writing the run to long-term memory after it, which loads
the embedder in a new process) from the result's ``timings.remember_s``. Time in which two stages overlap
counts once, for the first of planning, answer, subtasks (a subtask may start while the plan is still being
written). ``wall_s`` runs from the start of the transcription to the end of the speech, so the stages add
up to it but for the graph's own bookkeeping between steps.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tessera.cli._common import echo

if TYPE_CHECKING:
    from tessera.config import TeamConfig
    from tessera.team import Team
    from tessera.tools.asr import Transcript
    from tessera.tools.tts import Speech
    from tessera.types import Approval, Plan, Trace

__all__ = ["Stages", "listen", "run_stages", "run_voice", "speak", "task_or_audio", "voice_options"]

_PLANNING_KINDS = frozenset({"planning", "recall", "approval"})


_AUDIO = click.Path(dir_okay=False, path_type=Path)


def voice_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--audio IN`` and ``--speak OUT`` of ``tessera run``."""
    command = click.option(
        "--speak",
        type=_AUDIO,
        default=None,
        metavar="OUT.wav",
        help="Say the answer into this WAV file (tools.tts); --json then reports each stage's seconds.",
    )(command)
    return click.option(
        "--audio",
        type=_AUDIO,
        default=None,
        metavar="IN",
        help="Take the task as speech from this wav, flac, mp3 or ogg file (tools.asr), instead of TASK.",
    )(command)


def task_or_audio(task: str | None, audio: Path | None) -> str | None:
    """The TASK argument, checked against ``--audio``: exactly one of them gives the task."""
    if task is not None and audio is not None:
        raise click.UsageError("give the task as TASK or as --audio FILE, not both")
    if task is None and audio is None:
        raise click.UsageError("missing the task: give TASK (- reads stdin) or --audio FILE")
    return task


@dataclass
class Stages:
    """Seconds spent in each stage of a voice run, and the wall time of all of them together."""

    asr_s: float = 0.0
    planning_s: float = 0.0
    subtasks_s: float = 0.0
    answer_s: float = 0.0
    memory_s: float = 0.0
    tts_s: float = 0.0
    wall_s: float = 0.0

    def line(self) -> str:
        """``voice: asr 1.92s, planning 0.01s, ... (wall 2.10s)``."""
        parts = [f"{name.removesuffix('_s')} {value:.2f}s" for name, value in asdict(self).items()]
        return "voice: " + ", ".join(parts[:-1]) + f" (wall {self.wall_s:.2f}s)"


def run_stages(trace: Trace | None) -> tuple[float, float, float]:
    """``(planning_s, subtasks_s, answer_s)`` of a run, from its trace; overlaps count once (see module)."""
    if trace is None:
        return 0.0, 0.0, 0.0
    from tessera.types import union_length

    planning = [(s.start, s.end) for s in trace.spans if s.kind in _PLANNING_KINDS]
    answer = [(s.start, s.end) for s in trace.spans if s.kind == "answer"]
    everything = [(s.start, s.end) for s in trace.spans]
    planning_s = union_length(planning)
    answer_s = union_length(planning + answer) - planning_s
    subtasks_s = union_length(everything) - union_length(planning + answer)
    return planning_s, subtasks_s, answer_s


def listen(config: TeamConfig, audio: Path) -> Transcript:
    """Transcribe ``audio`` with the team's ``tools.asr`` settings."""
    from tessera.tools.asr import transcribe

    return transcribe(audio, config.tools.asr)


def speak(config: TeamConfig, text: str, out: Path | None = None) -> Speech:
    """Speak ``text`` with the team's ``tools.tts`` settings into ``out`` (default: a new file in the
    tools' output folder, ``speech-<8 hex>.wav``)."""
    from dataclasses import replace

    from tessera.errors import UserError
    from tessera.graphs.context import default_output_dir
    from tessera.tools.tts import synthesize

    settings = config.tools.tts
    folder = out.expanduser().resolve().parent if out is not None else default_output_dir(config)
    if out is not None and out.expanduser().is_dir():
        raise UserError(f"{out} is a directory; --speak takes the WAV file to write")
    try:
        speech = synthesize(
            text, output_dir=folder, voice=settings.voice, rate=settings.rate, engine=settings.engine
        )
    except OSError as exc:
        raise UserError(f"cannot write speech to {folder}: {exc.strerror or exc}") from None
    if out is None:
        return speech
    target = out.expanduser().resolve()
    os.replace(speech.path, target)
    return replace(speech, path=target)


def run_voice(
    team: Team,
    task: str | None,
    audio: Path | None,
    out: Path | None,
    *,
    thread_id: str | None,
    approve: Callable[[Plan], Approval] | None,
    as_json: bool,
) -> None:
    """Run one task given as speech (``audio``) or text, and speak the answer into ``out`` if given.

    Prints what ``tessera run`` prints, plus what was heard, where the speech went and the stage timings
    (``voice`` in the JSON); exits with the run's exit code.
    """
    from tessera.cli._run import EXIT_CODES, finish, follow

    config = team.config
    stages = Stages()
    began = time.perf_counter()
    transcript = None
    if audio is not None:
        transcript = listen(config, audio)
        stages.asr_s = time.perf_counter() - began
        task = transcript.text
        if not as_json:
            echo(f"  heard: {task or '(no speech)'} ({stages.asr_s:.2f}s)", err=True)
        if not task:
            from tessera.errors import UserError

            raise UserError(f"{audio}: no speech found, so there is no task")
    assert task is not None
    if as_json:
        result = team.run(task, thread_id=thread_id, approve=approve)
    else:
        result = follow(team.stream(task, thread_id=thread_id, approve=approve))
    stages.planning_s, stages.subtasks_s, stages.answer_s = run_stages(result.trace)
    stages.memory_s = result.timings.remember_s
    speech = None
    if out is not None and result.answer.strip():
        tts_began = time.perf_counter()
        speech = speak(config, result.answer, out)
        stages.tts_s = time.perf_counter() - tts_began
    stages.wall_s = time.perf_counter() - began
    if not as_json:
        if speech is not None:
            echo(f"  spoke: {speech.path} ({speech.duration_s:.1f} s of speech)", err=True)
        elif out is not None:
            echo(f"  nothing to speak: the run has no answer, {out} not written", err=True)
        echo(f"  {stages.line()}", err=True)
        finish(result, False, checkpointed=thread_id is not None)
        return
    report = {**result.to_json(), "voice": _voice_json(transcript, speech, stages)}
    echo(json.dumps(report, indent=2))
    code = EXIT_CODES.get(result.status, 0)
    if code:
        sys.exit(code)


def _voice_json(transcript: Transcript | None, speech: Speech | None, stages: Stages) -> dict[str, Any]:
    from tessera.tools.asr import artifacts

    return {
        "transcript": artifacts(transcript) | {"text": transcript.text} if transcript else None,
        "speech": (
            {"path": str(speech.path), "duration_s": round(speech.duration_s, 3), "voice": speech.voice}
            if speech
            else None
        ),
        "stages": {name: round(value, 4) for name, value in asdict(stages).items()},
    }
