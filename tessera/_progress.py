"""Tell the user when something is slow: a first-time download or a model load."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO


def quiet() -> bool:
    """Progress output is off when ``TESSERA_QUIET`` is set."""
    return os.environ.get("TESSERA_QUIET", "") not in ("", "0")


def show_progress() -> bool:
    """Draw progress bars only on a terminal (stderr a tty) and when not quiet: logs and pipes stay clean."""
    return not quiet() and sys.stderr.isatty()


@contextmanager
def slow_notice(label: str, *, after_s: float = 1.0) -> Iterator[None]:
    """Show a ticking progress line on stderr if the block takes longer than ``after_s`` seconds.

    llama.cpp loads a model in one blocking call with no progress hook, so the bar shows elapsed time,
    not a percentage; a fast load prints nothing at all. While a :class:`LiveLine` is on screen, the
    notice goes into that line instead of a bar of its own.
    """
    live = LiveLine.current
    if live is not None:
        live.activity = (label, time.monotonic())
        try:
            yield
        finally:
            live.activity = None
        return
    if not show_progress():
        yield
        return
    done = threading.Event()

    def ticker() -> None:
        if done.wait(after_s):
            return
        from tqdm import tqdm

        start = time.monotonic() - after_s
        with tqdm(desc=label, total=None, bar_format="{desc}: {elapsed}", file=sys.stderr) as bar:
            while not done.wait(0.2):
                bar.refresh()
            bar.set_description_str(f"{label}: done in {time.monotonic() - start:.1f}s")

    thread = threading.Thread(target=ticker, name="tessera-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


class _NoBar:
    def update(self, n: int) -> None:
        """Nothing to draw."""


@contextmanager
def progress_bar(total: int, label: str) -> Iterator[Any]:
    """A byte-counting tqdm bar on stderr when stderr is a terminal; silent otherwise (logs stay clean)."""
    if not show_progress():
        yield _NoBar()
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr) as bar:
        yield bar


class LiveLine:
    """One status line on a terminal, redrawn in place a few times a second until :meth:`stop`.

    Args:
        render: the line's text now (called under the line's lock, from its drawing thread too).
        stream: the terminal (stderr) to draw on.
    """

    current: LiveLine | None = None
    """The line on screen, if any: :func:`slow_notice` reports into it."""

    def __init__(self, render: Callable[[], str], stream: TextIO, *, every_s: float = 0.2) -> None:
        self.render = render
        self.stream = stream
        self.activity: tuple[str, float] | None = None
        """A slow step under way (a model load) and when it began, shown at the end of the line."""
        self._lock = threading.RLock()
        self._hidden = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._tick, args=(every_s,), name="tessera-live", daemon=True)
        LiveLine.current = self
        self._thread.start()

    def _tick(self, every_s: float) -> None:
        while not self._stopped.wait(every_s):
            self.draw()

    def draw(self) -> None:
        """Redraw the line now."""
        with self._lock:
            if self._hidden or self._stopped.is_set():
                return
            text = self.render()
            if self.activity is not None:
                label, since = self.activity
                text += f" · {label} {time.monotonic() - since:.0f}s"
            width = shutil.get_terminal_size().columns - 1
            self._write("\r\x1b[2K" + (text if len(text) <= width else text[: width - 1] + "…"))

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away: nothing more to draw
            self._stopped.set()

    @contextmanager
    def hidden(self) -> Iterator[None]:
        """Take the line off the screen while the block writes (a line above it, a question)."""
        with self._lock:
            self._hidden += 1
            if self._hidden == 1 and not self._stopped.is_set():
                self._write("\r\x1b[2K")
        try:
            yield
        finally:
            with self._lock:
                self._hidden -= 1
            self.draw()

    def stop(self) -> None:
        """Clear the line for good."""
        with self._lock:
            if not self._stopped.is_set():
                if not self._hidden:
                    self._write("\r\x1b[2K")
                self._stopped.set()
        if LiveLine.current is self:
            LiveLine.current = None
        if threading.current_thread() is not self._thread:
            self._thread.join()
