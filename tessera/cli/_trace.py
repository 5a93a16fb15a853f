"""``tessera trace RUN.json [--png out.png]``: a run's timeline, as text or as a Gantt chart."""

from __future__ import annotations

from pathlib import Path

import click

from tessera.cli._common import json_option

__all__ = ["trace"]


@click.command()
@click.argument("run_file", metavar="RUN.json", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--png", "png", type=click.Path(dir_okay=False, path_type=Path), help="Write a Gantt chart here."
)
@click.option(
    "--width", type=click.IntRange(20, 400), default=64, show_default=True, help="Text timeline width."
)
@json_option
def trace(run_file: Path, png: Path | None, width: int, as_json: bool) -> None:
    """Show the timeline of a run saved with `tessera run --json > RUN.json`.

    One row per model or endpoint, phases by letter (or colour, with --png), the critical path marked.
    """
    from tessera.tracing.view import load_trace, timeline_text

    found, data = load_trace(run_file)
    if png is not None:
        from tessera.tracing.chart import draw_png

        thread = data.get("thread_id")
        draw_png(found, png, title=f"tessera run {thread}" if thread else "")
        click.echo(f"wrote {png}", err=True)
        return
    if as_json:
        click.echo(found.model_dump_json(indent=2))
        return
    from rich.console import Console

    Console(width=max(100, width + 60), highlight=False).print(timeline_text(found, width=width))
