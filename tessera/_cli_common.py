"""Options and helpers shared by the CLI's command modules (kept free of heavy imports)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from tessera.config import TeamConfig

__all__ = ["json_option", "load_team_file", "team_option"]

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
