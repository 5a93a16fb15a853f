"""``tessera init`` (a starter team) and ``tessera completion`` (shell completion scripts)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

__all__ = ["STARTER", "completion", "init"]

STARTER = """\
# A starter Tessera team. It runs as is, with no download: its models are rule-based Python functions.
# To make it real, swap a model for a local GGUF file or a hub model (see the comments below), then
# `tessera validate {file}` and `tessera run --team {file} "your task"`.
name: {name}
description: A planner, a general specialist and a retriever over your documents.
state_dir: .tessera  # checkpoints, knowledge base and memory, relative to this file

models:
  planner:  # plans by rule; for a real one:  backend: llama_cpp, path: models/qwen2.5-1.5b-instruct.gguf
    backend: function
    callable: tessera.testing.demo:planner
  small:  # repeats its request; for a real one:  backend: llama_cpp, repo: Qwen/Qwen2.5-0.5B-Instruct-GGUF,
    #       file: qwen2.5-0.5b-instruct-q4_k_m.gguf  (downloaded on first use)
    backend: function
    callable: tessera.testing.demo:echo

planner:
  model: planner
  approve: false  # true: confirm (or edit) each plan before it runs

specialists:
  general:
    description: Writes, summarises and answers questions.
    model: small
  docs:
    kind: retriever  # answers from `tessera ingest`-ed documents, with citations
    description: Looks things up in the team's documents and cites them.

memory:
  retrieval: lexical  # hybrid needs an embedder, e.g.  embedder: BAAI/bge-small-en-v1.5
"""


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--name", default=None, help="Team name (default: the directory's name).")
@click.option("--force", is_flag=True, help="Overwrite an existing team.yaml.")
def init(directory: Path, name: str | None, force: bool) -> None:
    """Write a starter team.yaml in DIRECTORY (default: here) that runs with no download."""
    import re

    from tessera.errors import UserError

    file = directory / "team.yaml"
    if file.exists() and not force:
        raise UserError(f"{file}: already exists (use --force to overwrite)")
    team_name = name or re.sub(r"[^A-Za-z0-9_.-]+", "-", directory.resolve().name).strip("-.") or "team"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", team_name):
        raise UserError(f"--name: {team_name!r} is not a valid team name (letters, digits, _ . -)")
    directory.mkdir(parents=True, exist_ok=True)
    file.write_text(STARTER.format(name=team_name, file=file), encoding="utf-8")
    click.echo(f"wrote {file}")
    click.echo("next:")
    click.echo(f"  tessera validate {file}")
    click.echo(f'  tessera run --team {file} "Summarise why small models are useful; then list three uses."')
    click.echo(f"  tessera ingest docs/ --team {file}   # then ask the docs specialist about them")
    click.echo(f"  tessera chat --team {file}")


@click.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]), required=False)
def completion(shell: str | None) -> None:
    """Print the shell completion script, e.g. `eval "$(tessera completion bash)"` in ~/.bashrc."""
    import os

    from click.shell_completion import get_completion_class

    root = click.get_current_context().find_root().command  # the `tessera` group, without importing it
    shell = shell or Path(os.environ.get("SHELL", "bash")).name
    completer = get_completion_class(shell)
    if completer is None:
        click.echo(f"completion: unsupported shell {shell!r} (bash, zsh or fish)", err=True)
        sys.exit(2)
    click.echo(completer(root, {}, "tessera", "_TESSERA_COMPLETE").source())
