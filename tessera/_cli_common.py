"""Options and helpers shared by the CLI's command modules (kept free of heavy imports)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

if TYPE_CHECKING:
    from tessera.config import TeamConfig

__all__ = ["echo", "json_option", "load_team_file", "own_output", "output_stream", "team_option"]

team_option = click.option(
    "--team",
    "-t",
    "team_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: os.environ.get("TESSERA_TEAM", "team.yaml"),
    show_default="$TESSERA_TEAM or team.yaml",
    help="Team YAML file.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print data as JSON.")


def load_team_file(team_file: Path) -> TeamConfig:
    """Load and validate a team file (errors become one line and exit 2 in ``main``)."""
    from tessera.config import load_team

    return load_team(team_file)


_OWNED: dict[bool, TextIO] = {}
"""The command's own stdout (False) and stderr (True), while :func:`own_output` holds them."""


@contextmanager
def own_output() -> Iterator[None]:
    """Write the command's output through copies of fds 1 and 2 taken now, for as long as it runs.

    llama-cpp-python (``verbose=False``) points fds 1 and 2 at /dev/null, and ``sys.stdout`` and
    ``sys.stderr`` at a null file, while it loads a model, from whichever thread loads it; two loads at
    once can leave them there for good. What :func:`echo` writes goes to the files the command started
    with, whatever happens to fds 1 and 2 or to ``sys.stdout`` in the meantime.
    """
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    for err, fd, like in ((False, 1, sys.stdout), (True, 2, sys.stderr)):
        encoding = getattr(like, "encoding", None) or "utf-8"
        try:
            _OWNED[err] = os.fdopen(os.dup(fd), "w", encoding=encoding, errors="backslashreplace")
        except OSError:  # fd closed (``tessera run >&-``): echo falls back to sys.stdout/sys.stderr
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
    """The command's own stdout or stderr (see :func:`own_output`); None outside it."""
    return _OWNED.get(err)


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """``click.echo`` through the command's own stdout or stderr, which no model load can redirect."""
    stream = _OWNED.get(err)
    click.echo(message, file=stream, nl=nl, err=err)
