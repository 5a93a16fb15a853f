"""Options and helpers shared by the CLI's command modules (kept free of heavy imports)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tessera._output import output_stream, own_output

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


def load_team_file(team_file: Path, *, runnable: bool = False) -> TeamConfig:
    """Load and validate a team file (errors become one line and exit 2 in ``main``).

    With ``runnable``, also import what the team names and look for its model files, so that a command
    about to run the team stops on a config mistake before any model runs.
    """
    from tessera.config import load_team

    config = load_team(team_file)
    if runnable:
        from tessera.cli._config_check import check_loadable

        check_loadable(config, str(team_file))
    return config


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """``click.echo`` through the command's own stdout or stderr, which no model load can redirect."""
    click.echo(message, file=output_stream(err), nl=nl, err=err)
