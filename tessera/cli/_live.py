"""What ``tessera run`` shows while it works, on a terminal: one status line that moves.

Between the plan line and the end, a run can be silent for a long time (a 10 s planning, 7.5 s subtasks).
On a terminal, :class:`RunLine` keeps one line on stderr up to date: planning and for how long, each
running subtask with its seconds, how many wait, then the answer being written; a slow model load shows at
the end of it. The lines that stay (the plan, each finished subtask) are written above it. Without a
terminal nothing of this is drawn, so pipes and logs read as before.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tessera._progress import LiveLine, quiet

if TYPE_CHECKING:
    from typing import TextIO

    from tessera.events import Event

__all__ = ["RunLine", "live_wanted"]


def live_wanted(stdout: TextIO | None, stderr: TextIO | None) -> bool:
    """Draw the live line when both streams are a terminal and progress is not turned off."""
    return not quiet() and all(s is not None and s.isatty() for s in (stdout, stderr))


class RunLine:
    """The status line of one run, folded from its events (see the module docstring)."""

    def __init__(self, stream: TextIO) -> None:
        self.phase = "planning"
        self.since = time.monotonic()
        self.running: dict[str, tuple[str, float]] = {}
        self.waiting: set[str] = set()
        self.line = LiveLine(self.render, stream)

    def apply(self, event: Event) -> None:
        """Fold one event in; the answer's first token takes the line away (the answer is on screen)."""
        from tessera.events import AnswerToken, PlanReady, Replan, SubtaskFinished, SubtaskStarted

        if isinstance(event, PlanReady):
            self.waiting = {s.id for s in event.plan.subtasks} - set(self.running)
            self._phase("running")
        elif isinstance(event, SubtaskStarted):
            self.waiting.discard(event.id)
            self.running[event.id] = (event.specialist, time.monotonic())
        elif isinstance(event, SubtaskFinished):
            self.running.pop(event.result.id, None)
            self.waiting.discard(event.result.id)
            if not self.running and not self.waiting:
                self._phase("answering")
        elif isinstance(event, Replan):
            self.running, self.waiting = {}, set()
            self._phase("planning")
        elif isinstance(event, AnswerToken) and event.text:
            self.line.stop()
            return
        else:
            return  # nothing that shows on the line changed
        self.line.draw()

    def _phase(self, phase: str) -> None:
        self.phase, self.since = phase, time.monotonic()

    def render(self) -> str:
        now = time.monotonic()
        if self.phase == "planning":
            return f"  planning… {now - self.since:.1f}s"
        if self.phase == "answering" or not (self.running or self.waiting):
            return f"  writing the answer… {now - self.since:.1f}s"
        parts = [f"{sid} {who} {now - began:.1f}s" for sid, (who, began) in self.running.items()]
        line = "  running " + ", ".join(parts) if parts else "  starting subtasks…"
        return line + (f"; {len(self.waiting)} waiting" if self.waiting else "")

    def stop(self) -> None:
        self.line.stop()
