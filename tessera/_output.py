"""The process's own stdout and stderr: copies of fds 1 and 2 that no model load can redirect.

llama-cpp-python (``verbose=False``) points fds 1 and 2 at /dev/null, and ``sys.stdout`` and ``sys.stderr``
at a null file, while it loads a model, from whichever thread loads it; two loads at once can leave them
there for good. The CLI takes copies of fds 1 and 2 when a command starts (:func:`own_output`) and writes
what it prints through them; so does ``tessera serve``'s request log.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["output_stream", "own_output", "write_line"]


_OWNED: dict[bool, TextIO] = {}
"""The own stdout (False) and stderr (True), while :func:`own_output` holds them."""


@contextmanager
def own_output() -> Iterator[None]:
    """Take copies of fds 1 and 2 now, for :func:`output_stream` to hand out until the block ends.

    What is written through them goes to the files the process had when this started, whatever happens to
    fds 1 and 2 or to ``sys.stdout`` in the meantime.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    for err, fd, like in ((False, 1, sys.stdout), (True, 2, sys.stderr)):
        encoding = getattr(like, "encoding", None) or "utf-8"
        try:
            _OWNED[err] = os.fdopen(os.dup(fd), "w", encoding=encoding, errors="backslashreplace")
        except OSError:  # fd closed (``tessera run >&-``): writes fall back to sys.stdout/sys.stderr
            pass
    try:
        yield
    finally:
        for stream in _OWNED.values():
            try:
                stream.close()
            except OSError:
                pass
        _OWNED.clear()


def output_stream(err: bool = False) -> TextIO | None:
    """The process's own stdout or stderr (see :func:`own_output`); None outside it."""
    return _OWNED.get(err)


def write_line(text: str, *, err: bool = False) -> None:
    """Write one line to the process's own stdout or stderr (``sys.stdout``/``sys.stderr`` outside
    :func:`own_output`), and flush it."""
    stream = _OWNED.get(err) or (sys.stderr if err else sys.stdout)
    stream.write(text + "\n")
    stream.flush()
