"""Tell the user when something is slow: a first-time download or a model load."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


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
    not a percentage; a fast load prints nothing at all.
    """
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
